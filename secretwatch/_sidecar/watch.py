"""``secretwatch watch``: watch volumes, run the actions on every change, serve status.

The main thread waits for SIGTERM or SIGINT (blocked in every thread, so that only it
receives them); the watchers, the action runner and the status server work on threads of
their own. On the signal, the watchers stop, the running action finishes, and it exits 0.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Callable

import prometheus_client
import structlog

from secretwatch._errors import SecretWatchError
from secretwatch._sidecar.actions import Action, Event, Exec, Signal, Webhook
from secretwatch._sidecar.config import (
    ActionOptions,
    WatchOptionsModel,
    parse_listen,
    signal_number,
)
from secretwatch._sidecar.metrics import Metrics
from secretwatch._sidecar.runner import Runner
from secretwatch._sidecar.server import StatusServer
from secretwatch._snapshot import Change
from secretwatch._watcher import SecretWatcher

__all__ = ["build_actions", "run_watch"]

_log = structlog.get_logger("secretwatch")

STOP_SIGNALS = {signals.SIGTERM, signals.SIGINT}
_GRACE = 30.0  # seconds the running action may take to finish after SIGTERM


def build_actions(options: ActionOptions) -> list[Action]:
    """The actions the options ask for, in the order webhooks, signal, command."""
    actions: list[Action] = [
        Webhook(
            url,
            method=options.webhook_method,
            status=options.webhook_status,
            timeout=options.webhook_timeout,
        )
        for url in options.webhook
    ]
    if options.signal is not None:
        actions.append(
            Signal(
                signal_number(options.signal),
                pid_file=options.pid_file,
                process_name=options.process_name,
            )
        )
    if options.exec is not None:
        actions.append(Exec(options.exec, timeout=options.exec_timeout))
    return actions


def run_watch(options: WatchOptionsModel) -> int:
    """Run ``secretwatch watch``; return the exit code."""
    signals.pthread_sigmask(signals.SIG_BLOCK, STOP_SIGNALS)  # before any thread starts
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # noise
    metrics = Metrics()
    actions = build_actions(options)
    runner = Runner(actions, retries=options.webhook_retries, metrics=metrics)
    watchers = [SecretWatcher(path, **options.watch_options()) for path in options.paths]
    server: StatusServer | None = None
    try:
        for watcher in watchers:
            watcher.subscribe(_on_change(watcher, runner, metrics))
            watcher.subscribe_errors(lambda error: metrics.rejected.labels(error.path).inc())
            try:
                watcher.start()
            except SecretWatchError as exc:
                _log.error("secretwatch.start_failed", path=watcher.path, error=exc.message)
                return 1
            metrics.mode.labels(watcher.path, watcher.mode or "").set(1)
        _log.info(
            "secretwatch.watching",
            paths=[watcher.path for watcher in watchers],
            actions=[repr(action) for action in actions],
        )
        if options.once:
            events = [_initial(watcher) for watcher in watchers]
            results = [runner.run_now(event) for event in events]  # every one runs
            return 0 if all(results) else 1
        if options.listen is not None:
            server = StatusServer(
                parse_listen(options.listen),
                healthy=lambda: all(watcher.running for watcher in watchers),
                ready=lambda: all(watcher.snapshot.version > 0 for watcher in watchers),
                metrics=metrics,
            )
            server.start()
            host, port = server.address
            _log.info("secretwatch.listening", host=host, port=port)
        received = signals.sigwait(STOP_SIGNALS)
        _log.info("secretwatch.stopping", signal=signals.Signals(received).name)
        return 0
    finally:
        for watcher in watchers:
            watcher.stop()
        runner.close(_GRACE)
        if server is not None:
            server.close()


def _on_change(
    watcher: SecretWatcher, runner: Runner, metrics: Metrics
) -> Callable[[Change], None]:
    def on_change(change: Change) -> None:
        metrics.version.labels(watcher.path).set(change.new.version)
        metrics.last_reload.labels(watcher.path).set(change.new.loaded_at.timestamp())
        if change.old.version == 0:
            return  # the first load: nothing to reload yet
        metrics.reloads.labels(watcher.path).inc()
        runner.submit(Event(watcher.path, change.new.version, tuple(sorted(change.keys))))

    return on_change


def _initial(watcher: SecretWatcher) -> Event:
    snapshot = watcher.snapshot
    return Event(watcher.path, snapshot.version, tuple(sorted(snapshot)))
