"""The sidecar's child processes, and as a container's init (PID 1), the orphans it is handed.

Every process the sidecar starts (the command of ``run``, the commands of ``--exec``) is
started with :func:`spawn` and waited for by its owner, who reads its exit status. As PID 1,
the sidecar also becomes the parent of every process of the container whose own parent
ended (what the command started and left behind), and must reap them, or they stay as
zombies. The :class:`Reaper` reaps those, and only those: it looks at an ended child
without reaping it (``waitid`` with ``WNOWAIT``), and leaves the children of :func:`spawn`
to their owners, since a status taken from under an owner is lost to it (``Popen.wait``
then reports 0: a failed command would pass for a success).

A child is registered under the same lock the reaper holds while it decides, and within
the same hold as it is started: however soon it ends, it is never taken for an orphan.
The reaper runs on a thread of its own, woken by SIGCHLD (through the signal thread, see
:mod:`.signals`) and whenever an owner has reaped its child, never inside a signal handler.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from typing import Any

from secretwatch._errors import frames
from secretwatch._log import log as _log

__all__ = ["Process", "Reaper", "spawn"]

_lock = threading.Lock()  # held to start and register a child, and to reap an orphan
_owned: set[int] = set()  # children started by spawn() that their owners have yet to reap
_reaper: Reaper | None = None


class Process(subprocess.Popen[bytes]):
    """A child started by :func:`spawn`: once its owner has reaped it, the reaper is told,
    so that the orphans that may have ended meanwhile are reaped too."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to end (see ``Popen.wait``); its exit status."""
        code = super().wait(timeout)
        _release(self.pid)
        return code

    def poll(self) -> int | None:
        """Its exit status if it has ended, else ``None`` (see ``Popen.poll``)."""
        code = super().poll()
        if code is not None:
            _release(self.pid)
        return code


def spawn(argv: list[str], **options: Any) -> Process:
    """Start ``argv`` (``options`` as for ``subprocess.Popen``) as a child the caller owns:
    the caller must :meth:`~Process.wait` for it (or poll it until it has ended).

    Raises:
        OSError: it could not be started.
    """
    with _lock:
        process = Process(argv, **options)
        _owned.add(process.pid)
    return process


def _release(pid: int) -> None:
    with _lock:
        if pid not in _owned:
            return
        _owned.discard(pid)
        reaper = _reaper
    if reaper is not None:  # an orphan that ended meanwhile may have waited behind it
        reaper.wake()


class Reaper:
    """Reaps the orphans handed to this process, on a thread of its own; one per process.

    Start it where the sidecar is PID 1, and route SIGCHLD to :meth:`wake`.
    """

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="secretwatch-reaper", daemon=True)

    def start(self) -> None:
        """Reap from now on (the orphans that ended already too)."""
        global _reaper  # noqa: PLW0603 (the children of a process are the process's)
        _reaper = self
        self._thread.start()
        self.wake()

    def wake(self) -> None:
        """Look for ended orphans (a route for SIGCHLD)."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()  # a wake from now on brings another look
            try:
                reaped = reap_orphans()
                if reaped:
                    _log.debug("secretwatch.reaped", processes=reaped)
            except Exception as exc:  # the reaper must survive anything (a log that fails)
                with contextlib.suppress(Exception):
                    _log.error(
                        "secretwatch.internal_error",
                        task="reaping orphans",
                        error_type=type(exc).__name__,
                        frames=frames(exc),
                    )


def reap_orphans() -> int:
    """Reap every ended child that no owner waits for; how many were reaped.

    Stops at an ended child of :func:`spawn`'s: ``waitid`` shows one ended child at a time,
    and its owner reaps it soon, which wakes the reaper again.
    """
    reaped = 0
    while True:
        with _lock:
            try:  # look, without reaping
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # no children at all
                return reaped
            if ended is None or ended.si_pid in _owned:
                return reaped
            with contextlib.suppress(ChildProcessError):  # reaped by a Popen of someone else's
                os.waitid(os.P_PID, ended.si_pid, os.WEXITED | os.WNOHANG)  # an orphan: reap it
        reaped += 1
