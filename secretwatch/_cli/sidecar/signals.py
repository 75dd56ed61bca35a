"""Signals in the sidecar: the handlers do nothing, a thread of its own does the work.

Python runs a signal's handler on the main thread, between two bytecodes of whatever that
thread was doing, and runs it again, nested, when another signal arrives meanwhile. A
handler that logs (a lock the interrupted code may hold), imports (a codec, on first use),
takes a lock or waits for a process can deadlock or crash there: with a burst of orphans
ending at once, PID 1 did both. And a handler waits for the main thread to run Python
code, which a thread blocked on a lock does not.

So every handler installed here is empty. The interpreter's own C-level handler writes the
signal's number to a pipe (``signal.set_wakeup_fd``) at once, on whichever thread the
kernel picked, and the ``secretwatch-signals`` thread reads the pipe and runs each
signal's *route* as ordinary code: in order, one at a time, free to log and take locks.
"""

from __future__ import annotations

import contextlib
import os
import signal as signals
import threading
from collections.abc import Callable, Mapping
from types import FrameType

from secretwatch._errors import frames
from secretwatch._log import log as _log

__all__ = ["Route", "StopRequest", "route_signals"]

Route = Callable[[signals.Signals], object]
"""What a signal does, run on the signal thread with the signal's number."""


def route_signals(routes: Mapping[signals.Signals, Route]) -> None:
    """From now on, run ``routes[number](number)`` on the signal thread for every signal
    ``number`` of ``routes`` that arrives. Call it once, from the main thread."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # what set_wakeup_fd requires
    thread = threading.Thread(
        target=_deliver, args=(read_end, dict(routes)), name="secretwatch-signals", daemon=True
    )
    thread.start()
    # the pipe before the handlers: a signal in between would wake nobody
    signals.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    for number in routes:
        signals.signal(number, _nothing)


def _nothing(number: int, frame: FrameType | None) -> None:
    """The handler of every routed signal: the work is done on the signal thread."""


def _deliver(read_end: int, routes: dict[signals.Signals, Route]) -> None:
    routed = {int(number): (number, route) for number, route in routes.items()}
    while True:
        for byte in os.read(read_end, 512):  # each byte is a signal's number
            if byte not in routed:  # a handler of someone else's (Python's own, for SIGINT)
                continue
            number, route = routed[byte]
            try:
                route(number)
            except Exception as exc:  # the signal thread must survive anything
                with contextlib.suppress(Exception):  # a log that fails too (stderr gone)
                    _log.error(
                        "secretwatch.internal_error",
                        task=f"the route of {number.name}",
                        error_type=type(exc).__name__,
                        frames=frames(exc),
                    )


class StopRequest:
    """Set when a stopping signal arrives (or :meth:`set` is called); says why.

    The main thread :meth:`wait` s for it; :meth:`on_signal` is the route of the signals
    that stop (see :func:`route_signals`), run on the signal thread. A stop takes effect in
    this order: the :meth:`when_stopped` callbacks (no retry may start from here), the log
    (``secretwatch.stopping``, for a signal), then the main thread wakes. So whatever is
    logged after ``secretwatch.stopping`` happened once the stop was in force.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._asked = False  # under the lock: the first stop is taking effect
        self.reason = ""
        self._on_stop: list[Callable[[], object]] = []  # called once, when asked

    def set(self, reason: str) -> None:
        """Ask the main thread to stop, for ``reason``; only the first call counts."""
        self._set(reason, signal=None)

    def _set(self, reason: str, *, signal: signals.Signals | None) -> None:
        with self._lock:
            if self._asked:
                return
            self._asked = True
            self.reason = reason
            callbacks, self._on_stop = self._on_stop, []
        for callback in callbacks:
            callback()
        if signal is not None:
            _log.info("secretwatch.stopping", signal=signal.name)
        self._event.set()

    def when_stopped(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once a stop is asked for: then, or now if it was already."""
        with self._lock:
            if not self._asked:
                self._on_stop.append(callback)
                return
        callback()

    def on_signal(self, number: signals.Signals) -> None:
        """Stop for the signal ``number`` (its name is the reason), logged as
        ``secretwatch.stopping`` whatever the main thread is doing (``--once`` runs
        actions there)."""
        self._set(number.name, signal=number)

    def is_set(self) -> bool:
        """Whether a stop is in force (its callbacks have run, and it was logged)."""
        return self._event.is_set()

    def wait(self) -> str:
        """Block until a stop is asked for; return why."""
        self._event.wait()
        return self.reason
