"""The command ``secretwatch run`` supervises: started, signalled, restarted, stopped.

The child never sees secretwatch's arguments. It runs in a process group of its own (but
in a terminal's, when run from one, so that it can read the terminal), and stopping it
stops the group: the processes it started too. A restart is graceful: SIGTERM to the group,
up to ``grace`` seconds for the command to exit, then SIGKILL; once the command has ended,
what is left of its group is killed. A stop that comes during a restart takes the command
being restarted over (no new one is started), so it too ends within ``grace``. A child
that exits on its own with 0 ends ``run`` with 0; one that fails is started again after a
backoff (1, 2, 4 ... 30 s), and each failure is logged. A child that can't be started again
ends ``run`` with 127.
"""

from __future__ import annotations

import os
import signal as signals
import subprocess
import sys
import threading

from secretwatch._cli.config import ENV_PREFIX
from secretwatch._cli.sidecar.actions import ActionError, Event
from secretwatch._cli.sidecar.reaper import Process, spawn
from secretwatch._cli.sidecar.signals import StopRequest
from secretwatch._log import log as _log

__all__ = ["Child", "RestartChild", "SignalChild"]

_MAX_BACKOFF = 30.0


class Child:
    """One supervised command."""

    def __init__(self, argv: list[str], *, grace: float, stop: StopRequest):
        self._argv = argv
        self._grace = grace
        self._stop = stop
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._process: Process | None = None
        self._retiring: Process | None = None  # the process a restart is stopping
        self._failures = 0  # failed exits in a row, for the backoff
        self._own_group = not sys.stdin.isatty()  # a terminal's group may read the terminal
        self.exited_on_its_own: int | None = None  # its exit code, when it ended run

    def start(self) -> None:
        """Start the command, unless a change started it already (``OSError``: it can't)."""
        with self._lock:
            if self._process is None:
                self._spawn()

    def restart(self) -> None:
        """Stop the child gracefully and start it again (or end ``run`` when it can't)."""
        with self._lock:
            if self._closing.is_set():
                return
            old, self._process = self._process, None
            self._retiring = old
        if old is not None:  # not under the lock: a stop meanwhile takes it over
            self._terminate(old)
        with self._lock:
            self._retiring = None
            if self._closing.is_set() or self._process is not None:
                return  # stopping; or started meanwhile (by start()), after the change
            self._failures = 0
            try:
                self._spawn()
            except OSError as exc:  # not transient (the program is gone): retries won't help
                _log.error("secretwatch.child_start_failed", error=exc.strerror)
                self.exited_on_its_own = 127
                self._stop.set("the command could not be started again")

    def send(self, number: signals.Signals) -> None:
        """Send ``number`` to the child (not its group); ``ActionError`` when none runs."""
        process = self._process
        if process is None or process.poll() is not None:
            raise ActionError(f"signal {number.name}: the command is not running")
        process.send_signal(number)

    def stop(self, number: signals.Signals) -> int:
        """Pass ``number`` on to the group, wait up to the grace period (then SIGKILL); the
        command's exit code."""
        self._closing.set()
        with self._lock:
            process = self._process or self._retiring
        if process is None:
            return 1
        if process.poll() is not None:  # waiting to start it again: ended by this signal
            self._signal_group(process, signals.SIGKILL)  # what it left running
            return 128 + number
        self._terminate(process, number)
        return _exit_code(process.returncode)

    def _terminate(self, process: Process, number: signals.Signals = signals.SIGTERM) -> None:
        """Send ``number`` to the group, give the command ``grace`` seconds, then SIGKILL;
        once it has ended, kill what is left of its group (what ignored ``number``)."""
        if process.poll() is None:
            self._signal_group(process, number)
            try:
                process.wait(self._grace)
            except subprocess.TimeoutExpired:
                _log.warning("secretwatch.child_killed", pid=process.pid, grace=self._grace)
                self._signal_group(process, signals.SIGKILL)
                process.wait()
        self._signal_group(process, signals.SIGKILL)  # what it left running

    def _signal_group(self, process: Process, number: signals.Signals) -> None:
        try:
            if self._own_group:
                os.killpg(process.pid, number)
            elif process.poll() is None:
                process.send_signal(number)
        except ProcessLookupError:  # the whole group has ended
            pass

    def _spawn(self) -> None:
        group = 0 if self._own_group else None
        # secretwatch's configuration (a webhook's credentials, say) is not the command's
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
        process = spawn(self._argv, process_group=group, env=env)
        self._process = process
        # waited for before anything else can fail: an ended child nobody waits for would
        # keep the reaper of a PID 1 from the orphans behind it
        threading.Thread(
            target=self._watch, args=(process,), name="secretwatch-child", daemon=True
        ).start()
        _log.info("secretwatch.child_started", pid=process.pid, command=self._argv[0])

    def _watch(self, process: Process) -> None:
        code = process.wait()
        with self._lock:
            if process is not self._process or self._closing.is_set():
                return  # replaced by a restart, or being stopped
            log = _log.info if code == 0 else _log.warning
            log("secretwatch.child_exited", pid=process.pid, exit_code=_exit_code(code))
            if code == 0:
                self.exited_on_its_own = 0
                self._stop.set("the command exited")
                return
            delay = min(_MAX_BACKOFF, 2.0**self._failures)
            self._failures += 1
            _log.warning("secretwatch.child_restarting", delay=delay, failures=self._failures)
        if self._closing.wait(delay):
            return
        with self._lock:
            if process is not self._process or self._closing.is_set():
                return
            self._signal_group(process, signals.SIGKILL)  # what it left running
            try:
                self._spawn()
            except OSError as exc:
                _log.error("secretwatch.child_start_failed", error=exc.strerror)
                self.exited_on_its_own = 127
                self._stop.set("the command could not be started again")


def _exit_code(returncode: int) -> int:
    """Popen's ``-N`` for death by signal N is the shell's ``128 + N``."""
    return 128 - returncode if returncode < 0 else returncode


class RestartChild:
    """The action ``--on-change restart``."""

    kind = "restart"
    target = "the command"

    def __init__(self, child: Child):
        self._child = child

    def __call__(self, event: Event) -> None:
        self._child.restart()

    def __repr__(self) -> str:
        return "RestartChild()"


class SignalChild:
    """The action ``--on-change signal:NAME``."""

    kind = "signal"
    target = "the command"

    def __init__(self, child: Child, number: signals.Signals):
        self._child = child
        self._signal = number

    def __call__(self, event: Event) -> None:
        self._child.send(self._signal)

    def __repr__(self) -> str:
        return f"SignalChild({self._signal.name})"
