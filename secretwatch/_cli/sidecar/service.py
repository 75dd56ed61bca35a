"""What ``watch`` and ``run`` share: the watchers, the actions, the status endpoint, stopping.

A :class:`Service` starts a watcher per path (the first load of each must succeed), runs the
actions of each later change in order (:class:`Runner`), keeps the metrics, and serves
``/healthz``, ``/readyz`` and ``/metrics`` when asked. :func:`handle_signals` routes the
signals (see :mod:`.signals`), and SIGCHLD to a :class:`Reaper` where the sidecar is a
container's init.
"""

from __future__ import annotations

import os
import signal as signals
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import prometheus_client

from secretwatch._cli.sidecar.actions import Action, Event, Exec, Signal, Webhook
from secretwatch._cli.sidecar.config import ActionOptions, parse_listen, signal_number
from secretwatch._cli.sidecar.metrics import Metrics
from secretwatch._cli.sidecar.reaper import Reaper
from secretwatch._cli.sidecar.runner import Runner
from secretwatch._cli.sidecar.server import StatusServer
from secretwatch._cli.sidecar.signals import Route, route_signals
from secretwatch._cli.sidecar.webhook_file import WebhookFile
from secretwatch._errors import SecretWatchError
from secretwatch._log import log as _log
from secretwatch._read.snapshot import Change
from secretwatch._watch.watcher import SecretWatcher

__all__ = ["Service", "build_actions", "handle_signals"]

# seconds a stop waits for the running attempt beyond the longest an action allows itself
_CLOSE_MARGIN = 2.0


def build_actions(options: ActionOptions) -> list[Action]:
    """The actions the options ask for, in the order webhooks, signal, command (the webhooks
    of ``--webhook-file`` come after the others: see :class:`Service`)."""
    actions: list[Action] = [
        webhook(options, url, number) for number, url in enumerate(options.webhook, 1)
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


def webhook(options: ActionOptions, url: str, number: int) -> Webhook:
    """Webhook ``#number``, to ``url``, as the options say."""
    return Webhook(
        url,
        method=options.webhook_method,
        status=options.webhook_status,
        timeout=options.webhook_timeout,
        number=number,
    )


def handle_signals(routes: Mapping[signals.Signals, Route]) -> None:
    """Route the signals as :func:`route_signals` does; and as a container's init (PID 1),
    SIGCHLD to a reaper of orphans. Call it from the main thread, before starting anything
    a signal must reach."""
    routes = dict(routes)
    reaper = Reaper() if os.getpid() == 1 else None  # the orphans of a container come here
    if reaper is not None:
        routes[signals.SIGCHLD] = lambda number: reaper.wake()
    route_signals(routes)
    if reaper is not None:  # after SIGCHLD is routed: no child can end unseen in between
        reaper.start()


class Service:
    """The watchers of ``paths`` and the ``actions`` run on their changes.

    Raises:
        ValueError: ``--listen`` can't be had (the port is taken, the address is not this
            host's): found before any volume is loaded.
    """

    def __init__(self, paths: Sequence[str], options: ActionOptions, actions: Sequence[Action]):
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # noise
        watch = options.watch_options()
        watch["decoders"] = {"*": "bytes"}  # values are never used: a binary key is fine
        self.watchers = [SecretWatcher(path, **watch) for path in paths]
        self.metrics = Metrics(self.watchers)
        self.actions = list(actions)
        self.webhook_file: WebhookFile | None = None
        if options.webhook_file is not None:  # its webhooks come after the others
            self.webhook_file = WebhookFile(
                options.webhook_file,
                make=partial(webhook, options),
                first=len(options.webhook) + 1,
                watch=options.watch_options(),
            )
        kinds = [action.kind for action in self.actions] + ["webhook"] * bool(self.webhook_file)
        self.metrics.expect(paths=[watcher.path for watcher in self.watchers], kinds=kinds)
        # bound now, served once the volumes are loaded: a port taken is a usage error
        self._server = None if options.listen is None else self._bind(options.listen)
        self.runner = Runner(
            self.current_actions, retries=options.webhook_retries, metrics=self.metrics
        )
        # an attempt ends by --webhook-timeout or --exec-timeout: a stop waits that long
        timeouts = [options.webhook_timeout] if options.webhook or options.webhook_file else []
        timeouts += [options.exec_timeout] if options.exec is not None else []
        self._close_timeout = max(timeouts, default=0.0) + _CLOSE_MARGIN
        # path -> the last version handed to the runner (1, the first load, needs nothing);
        # under the lock, and not after close(), which reports what was applied since
        self._handed: dict[str, int] = {}
        self._handing = threading.Lock()
        self._closed = False

    def current_actions(self) -> list[Action]:
        """The actions in force: those given, with the webhooks of ``--webhook-file`` (as
        the file is now) after the other webhooks, before the signal and the command."""
        if self.webhook_file is None:
            return self.actions
        at = next((i for i, a in enumerate(self.actions) if isinstance(a, Signal | Exec)), None)
        at = len(self.actions) if at is None else at
        return [*self.actions[:at], *self.webhook_file.webhooks, *self.actions[at:]]

    def start(self, *, follow: bool = True) -> bool:
        """Load every volume and start watching; ``False`` (logged) when one can't be loaded.

        ``follow=False`` (``--once``): later changes run no action; :meth:`run_once` runs
        them for the versions in force, and nothing runs beside it.
        """
        if self.webhook_file is not None:
            try:
                self.webhook_file.start()
            except SecretWatchError as exc:
                path = self.webhook_file.path
                _log.error("secretwatch.start_failed", webhook_file=path, error=exc.message)
                return False
        for watcher in self.watchers:
            if follow:
                watcher.subscribe(self._on_change(watcher))
            watcher.subscribe_errors(self._on_rejected)
            try:
                watcher.start()
            except SecretWatchError as exc:
                _log.error("secretwatch.start_failed", path=watcher.path, error=exc.message)
                return False
        _log.info(
            "secretwatch.watching",
            paths=[watcher.path for watcher in self.watchers],
            actions=[repr(action) for action in self.current_actions()],
        )
        if self._server is not None:
            self._server.start()
            host, port = self._server.address
            _log.info("secretwatch.listening", host=host, port=port)
        return True

    def _bind(self, listen: str) -> StatusServer:
        """The status server, listening (not serving yet) on ``listen``."""
        try:
            return StatusServer(
                parse_listen(listen),
                healthy=self._healthy,
                ready=lambda: all(w.snapshot.version > 0 for w in self._all_watchers()),
                metrics=self.metrics,
            )
        except OSError as exc:  # the port is taken, the address is not this host's
            reason = exc.strerror or type(exc).__name__
            raise ValueError(f"--listen {listen}: {reason}") from None

    def run_once(self) -> bool:
        """Run every action once for the current version of every volume; all succeeded?"""
        results = [
            self.runner.run_now(Event(watcher.path, snapshot.version, tuple(sorted(snapshot))))
            for watcher in self.watchers
            for snapshot in [watcher.snapshot]
        ]
        return all(results)

    def close(self) -> None:
        """Stop watching, let the running attempt finish (the other actions are skipped),
        stop serving.

        A change applied just before the stop whose callback had not reached us yet (a
        stopped watcher drops those) is reported skipped too: no applied version goes
        without its actions run or reported.
        """
        for watcher in self.watchers:
            watcher.stop()
        self.runner.cancel()  # from here, what is submitted is reported skipped, not run
        with self._handing:
            self._closed = True
            for watcher in self.watchers:
                version = watcher.snapshot.version  # the last applied, kept after stop()
                if version > self._handed.get(watcher.path, 1):
                    self.runner.submit(Event(watcher.path, version, ()))
        self.runner.close(self._close_timeout)
        for action in self.actions:
            if isinstance(action, Webhook):
                action.close()
        if self.webhook_file is not None:
            self.webhook_file.stop()
        if self._server is not None:
            self._server.close()

    def _all_watchers(self) -> list[SecretWatcher]:
        """The volumes' watchers, and the webhook file's."""
        extra = [self.webhook_file.watcher] if self.webhook_file is not None else []
        return [*self.watchers, *extra]

    def _healthy(self) -> bool:
        return self.runner.alive and all(watcher.running for watcher in self._all_watchers())

    def _on_rejected(self, error: SecretWatchError) -> None:
        self.metrics.rejected.labels(error.path).inc()

    def _on_change(self, watcher: SecretWatcher) -> Callable[[Change], None]:
        def on_change(change: Change) -> None:
            if change.old.version == 0:
                return  # the first load: nothing to reload yet
            self.metrics.reloads.labels(watcher.path).inc()
            keys = tuple(sorted(change.keys))
            with self._handing:
                if self._closed:  # close() has reported it
                    return
                self._handed[watcher.path] = change.new.version
                self.runner.submit(Event(watcher.path, change.new.version, keys))

        return on_change
