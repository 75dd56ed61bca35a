"""Running the actions of each change in order, retrying failures with backoff and jitter.

One thread runs the actions: those of a change all run (each retried until it succeeds or
its retries are spent) before the next change's start. A failure is logged and counted at
every attempt; an action that still fails after its last retry is reported as failed, never
dropped silently. On close (SIGTERM), the running attempt finishes, with no retry after it
(``action_gave_up`` says ``stopping=true`` when retries were left); the other actions of its
change and the changes still queued are skipped, and reported.
Each attempt is bounded by its action (``--webhook-timeout``, ``--exec-timeout``), so a
stop waits for one attempt at most.

At most one change per volume waits its turn: a later change of a volume whose change
still waits is merged into it (the later version, the keys of both; logged as
``secretwatch.actions_merged``: ``volume_version``, ``merged_volume_version``), since one
reload takes the neighbour to the latest version. So the queue holds at most one change
per volume, however long the actions take (retrying a server that is down, say) and
however often a writer changes the volume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from secretwatch._backoff import backoff
from secretwatch._cli.sidecar.actions import Action, ActionError, Event
from secretwatch._cli.sidecar.metrics import Metrics
from secretwatch._log import log as _log

__all__ = ["Runner"]


class Runner:
    """Runs ``actions`` for each submitted :class:`Event` on a thread of its own.

    ``actions`` is a sequence, or a function that gives the actions in force when a change
    starts (webhooks read from a file change with it).
    """

    def __init__(
        self,
        actions: Sequence[Action] | Callable[[], Sequence[Action]],
        *,
        retries: int,
        metrics: Metrics,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        fixed = () if callable(actions) else tuple(actions)
        self._actions = actions if callable(actions) else lambda: fixed
        self._retries = retries
        self._metrics = metrics
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._waiting: dict[str, Event] = {}  # path -> its change to run, oldest first
        self._queued = threading.Condition()
        self._closing = threading.Event()
        self._starting = threading.Lock()  # held by cancel() and to decide on an attempt
        self._thread = threading.Thread(target=self._loop, name="secretwatch-actions", daemon=True)
        self._thread.start()

    def submit(self, event: Event) -> None:
        """Run the actions for ``event`` after those of earlier events (merged into the
        change of its volume that still waits, if one does)."""
        with self._queued:
            if self._closing.is_set():  # stopping: it would not run
                self._skip(event, self._actions())
                return
            earlier = self._waiting.get(event.path)
            if earlier is not None:
                _log.info(
                    "secretwatch.actions_merged",
                    path=event.path,
                    volume_version=event.version,
                    merged_volume_version=earlier.version,
                )
                keys = tuple(sorted({*earlier.keys, *event.keys}))
                event = Event(event.path, event.version, keys)
            self._waiting[event.path] = event  # an earlier one keeps its place
            self._queued.notify()

    def run_now(self, event: Event) -> bool:
        """Run the actions for ``event`` on this thread; whether every one succeeded."""
        return self._run_all(event)

    @property
    def alive(self) -> bool:
        """Whether its thread still runs the actions."""
        return self._thread.is_alive()

    def cancel(self) -> None:
        """No more retries nor events: the running attempt is the last one. Once this has
        returned, no attempt starts: the decision to start one is taken under the same
        lock (an attempt decided just before it is the running one)."""
        with self._starting:
            self._closing.set()

    def _may_start(self) -> bool:
        """Whether an attempt may start now (see :meth:`cancel`)."""
        with self._starting:
            return not self._closing.is_set()

    def close(self, timeout: float | None = None) -> None:
        """Let the running attempt finish, skip the rest (reported), stop the thread.

        Waits for the running attempt, which each action bounds (``--webhook-timeout``,
        ``--exec-timeout``), and at most ``timeout`` seconds: the backstop for a wait that
        no action bounds (the system resolver's, say). Past it, the attempt is left to the
        end of the process (its thread is a daemon), and that is logged.
        """
        with self._starting, self._queued:
            self._closing.set()
            self._queued.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("secretwatch.actions_abandoned", waited=timeout)

    def _loop(self) -> None:
        while True:
            with self._queued:
                self._queued.wait_for(lambda: self._waiting or self._closing.is_set())
                if not self._waiting:  # closing, and nothing left to report
                    return
                event = self._waiting.pop(next(iter(self._waiting)))
            self._run_all(event)  # once closing, reported as skipped

    def _run_all(self, event: Event) -> bool:
        """Run every action for ``event`` in order, unless closing (the rest is reported as
        skipped); whether every one succeeded."""
        succeeded = True
        actions = self._actions()
        for index, action in enumerate(actions):
            if not self._may_start():
                self._skip(event, actions[index:])
                return False
            succeeded = self._run(action, event) and succeeded
        return succeeded

    def _skip(self, event: Event, actions: Sequence[Action]) -> None:
        _log.warning(
            "secretwatch.actions_skipped",
            path=event.path,
            volume_version=event.version,
            actions=[action.target for action in actions],
        )

    def _run(self, action: Action, event: Event) -> bool:
        log = _log.bind(
            action=action.kind,
            target=action.target,
            path=event.path,
            volume_version=event.version,
        )
        attempts = self._retries + 1
        made = 0
        for attempt in range(attempts):
            if attempt and not self._may_start():  # stopped at the end of the backoff
                break
            made += 1
            try:
                action(event)
            except Exception as exc:  # an ActionError says why; anything else, by its type
                reason = str(exc) if isinstance(exc, ActionError) else type(exc).__name__
                self._metrics.action_failures.labels(action.kind).inc()
                retrying = attempt + 1 < attempts and not self._closing.is_set()
                log.warning(
                    "secretwatch.action_failed",
                    attempt=attempt + 1,
                    error=reason,
                    retrying=retrying,
                )
                delay = backoff(attempt, first=self._backoff, most=self._max_backoff)
                if not retrying or self._closing.wait(delay):  # no retry once closing
                    break
                continue
            self._metrics.actions.labels(action.kind).inc()
            log.info("secretwatch.action_done", attempt=attempt + 1)
            return True
        # with retries left, the stop ended them: an action_failed said retrying=true, if
        # the stop came in the backoff after it
        log.error("secretwatch.action_gave_up", attempts=made, stopping=made < attempts)
        return False
