"""``secretwatch run PATH... -- CMD ARG...``: run a command, and restart or signal it on change.

SIGTERM and SIGINT are passed on to the command, and ``run`` exits with its exit code. The
usual actions (webhook, signal, exec) run too, after the restart or signal.
"""

from __future__ import annotations

import os
import signal as signals
import sys

import structlog

from secretwatch._sidecar.actions import Action, ActionError
from secretwatch._sidecar.child import Child, RestartChild, SignalChild, reap_orphans
from secretwatch._sidecar.config import RunOptionsModel, signal_number
from secretwatch._sidecar.service import Service, build_actions, stop_requests

__all__ = ["run_command"]

_log = structlog.get_logger("secretwatch")


def run_command(options: RunOptionsModel, command: list[str]) -> int:
    """Run ``secretwatch run``; return the exit code (the command's, when it ran)."""
    stop = stop_requests(signals.SIGTERM, signals.SIGINT, signals.SIGQUIT)
    child = Child(command, grace=options.grace, stop=stop)
    for number in _PASSED_ON:  # signals meant for the command, as in an init process
        signals.signal(number, lambda number, frame: _pass_on(child, number))
    if os.getpid() == 1:  # a container's init: orphans come here to be reaped
        signals.signal(signals.SIGCHLD, lambda number, frame: _reap(child))
    on_change: Action
    if options.on_change == "restart":
        on_change = RestartChild(child)
    else:
        on_change = SignalChild(child, signal_number(options.on_change.partition(":")[2]))
    try:
        actions = [on_change, *build_actions(options)]
    except ValueError as exc:  # what the options' own checks could not see
        print(f"secretwatch: {exc}", file=sys.stderr)
        return 2
    service = Service(options.paths, options, actions)
    stop.on_stop.append(service.runner.cancel)
    try:
        if not service.start():
            return 1
        try:
            child.start()
        except OSError as exc:
            _log.error("secretwatch.child_start_failed", command=command[0], error=exc.strerror)
            return 127
        reason = stop.wait()
        ended = child.exited_on_its_own
        if ended is not None:  # the command ended run; what it started ends with it
            child.stop(signals.SIGTERM)
            return ended
        _log.info("secretwatch.stopping", signal=reason)
        return child.stop(signals.Signals[reason])  # at once: not after a running action
    finally:
        service.close()


_PASSED_ON = (signals.SIGHUP, signals.SIGUSR1, signals.SIGUSR2)


def _reap(child: Child) -> None:
    reaped = reap_orphans(child)
    if reaped:
        _log.debug("secretwatch.reaped", processes=reaped)


def _pass_on(child: Child, number: int) -> None:
    try:
        child.send(signals.Signals(number))
    except ActionError:
        _log.warning("secretwatch.signal_not_passed_on", signal=signals.Signals(number).name)
