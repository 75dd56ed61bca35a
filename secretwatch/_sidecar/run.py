"""``secretwatch run PATH... -- CMD ARG...``: run a command, and restart or signal it on change.

SIGTERM and SIGINT are passed on to the command, and ``run`` exits with its exit code. The
usual actions (webhook, signal, exec) run too, after the restart or signal.
"""

from __future__ import annotations

import signal as signals

import structlog

from secretwatch._sidecar.actions import Action
from secretwatch._sidecar.child import Child, RestartChild, SignalChild
from secretwatch._sidecar.config import RunOptionsModel, signal_number
from secretwatch._sidecar.service import Service, build_actions, stop_requests

__all__ = ["run_command"]

_log = structlog.get_logger("secretwatch")


def run_command(options: RunOptionsModel, command: list[str]) -> int:
    """Run ``secretwatch run``; return the exit code (the command's, when it ran)."""
    stop = stop_requests()
    child = Child(command, grace=options.grace, stop=stop)
    on_change: Action
    if options.on_change == "restart":
        on_change = RestartChild(child)
    else:
        on_change = SignalChild(child, signal_number(options.on_change.partition(":")[2]))
    service = Service(options.paths, options, [on_change, *build_actions(options)])
    try:
        if not service.start():
            return 1
        try:
            child.start()
        except OSError as exc:
            _log.error("secretwatch.child_start_failed", command=command[0], error=exc.strerror)
            return 127
        reason = stop.wait()
    finally:
        service.close()  # no restart from here on
    if child.exited_on_its_own is not None:
        return child.exited_on_its_own
    _log.info("secretwatch.stopping", signal=reason)
    return child.stop(signals.Signals[reason])
