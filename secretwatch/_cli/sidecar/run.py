"""``secretwatch run PATH... -- CMD ARG...``: run a command, and restart or signal it on change.

SIGTERM, SIGINT and SIGQUIT are passed on to the command, and ``run`` exits with its exit
code; SIGHUP, SIGUSR1 and SIGUSR2 are passed on too. The usual actions (webhook, signal,
exec) run too, after the restart or signal. As a container's init (PID 1), it reaps the
orphans of the container (see :mod:`.reaper`), as ``watch`` does.
"""

from __future__ import annotations

import signal as signals
import sys
from functools import partial

from secretwatch._cli.sidecar.actions import Action, ActionError
from secretwatch._cli.sidecar.child import Child, RestartChild, SignalChild
from secretwatch._cli.sidecar.config import RunOptionsModel, signal_number
from secretwatch._cli.sidecar.service import Service, build_actions, handle_signals
from secretwatch._cli.sidecar.signals import Route, StopRequest
from secretwatch._log import log as _log

__all__ = ["run_command"]


def run_command(options: RunOptionsModel, command: list[str]) -> int:
    """Run ``secretwatch run``; return the exit code (the command's, when it ran)."""
    stop = StopRequest()
    child = Child(command, grace=options.grace, stop=stop)
    # SIGHUP, SIGUSR1 and SIGUSR2 are meant for the command, as for an init process
    routes: dict[signals.Signals, Route] = dict.fromkeys(_PASSED_ON, partial(_pass_on, child))
    routes.update(dict.fromkeys(_STOPPING, partial(_stopping, stop, child)))
    handle_signals(routes)
    on_change: Action
    if options.on_change == "restart":
        on_change = RestartChild(child)
    else:
        on_change = SignalChild(child, signal_number(options.on_change.partition(":")[2]))
    try:
        actions = [on_change, *build_actions(options)]
        service = Service(options.paths, options, actions)
    except ValueError as exc:  # what the options' own checks could not see (a port taken)
        print(f"secretwatch: {exc}", file=sys.stderr)
        return 2
    stop.when_stopped(service.runner.cancel)
    try:
        if not service.start():
            return 1
        if stop.is_set():  # during the first load: the command is not started at all
            return 128 + signals.Signals[stop.reason]
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
        return child.stop(signals.Signals[reason])  # at once: not after a running action
    finally:
        service.close()


_PASSED_ON = (signals.SIGHUP, signals.SIGUSR1, signals.SIGUSR2)
_STOPPING = (signals.SIGTERM, signals.SIGINT, signals.SIGQUIT)


def _stopping(stop: StopRequest, child: Child, number: signals.Signals) -> None:
    """The first stopping signal stops ``run`` (and is passed on to the command as it
    stops it); a later one goes to the command at once, as for an init process."""
    if stop.is_set():
        _pass_on(child, number)
    else:
        stop.on_signal(number)


def _pass_on(child: Child, number: signals.Signals) -> None:
    try:
        child.send(number)
    except ActionError:
        _log.warning("secretwatch.signal_not_passed_on", signal=number.name)
