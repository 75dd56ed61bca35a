"""``secretwatch watch``: watch volumes, run the actions on every change, serve status.

The watchers, the action runner and the status server work on threads of their own; the
main thread waits for SIGTERM or SIGINT, then the watchers stop, the running attempt of an
action finishes (bounded by --webhook-timeout or --exec-timeout), the rest is skipped, and
it exits 0.
"""

from __future__ import annotations

import signal as signals
import sys

from secretwatch._cli.sidecar.config import WatchOptionsModel
from secretwatch._cli.sidecar.service import Service, build_actions, handle_signals
from secretwatch._cli.sidecar.signals import Route, StopRequest

__all__ = ["run_watch"]

_IGNORED = (signals.SIGHUP, signals.SIGUSR1, signals.SIGUSR2)


def _nothing(number: signals.Signals) -> None:
    """The route of a signal that ``watch`` takes no action on."""


def run_watch(options: WatchOptionsModel) -> int:
    """Run ``secretwatch watch``; return the exit code."""
    stop = StopRequest()
    # SIGHUP, SIGUSR1 and SIGUSR2 are no reason to stop (their default action would); a
    # route that does nothing, not SIG_IGN, which the commands of --exec would inherit
    routes: dict[signals.Signals, Route] = dict.fromkeys(_IGNORED, _nothing)
    routes.update(dict.fromkeys((signals.SIGTERM, signals.SIGINT), stop.on_signal))
    handle_signals(routes)
    try:
        actions = build_actions(options)
        service = Service(options.paths, options, actions)
    except ValueError as exc:  # what the options' own checks could not see (a port taken)
        print(f"secretwatch: {exc}", file=sys.stderr)
        return 2
    stop.when_stopped(service.runner.cancel)  # no more retries, also under --once
    try:
        if not service.start(follow=not options.once):
            return 1
        if options.once:
            return 0 if service.run_once() else 1
        stop.wait()  # logged as secretwatch.stopping when it came
        return 0
    finally:
        service.close()
