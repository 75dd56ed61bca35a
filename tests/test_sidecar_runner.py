"""The sidecar's action runner, in process, with actions of the test's own: stopping."""

from __future__ import annotations

import queue
import threading

from structlog.testing import LogCapture

from secretwatch._cli.sidecar.actions import ActionError, Event
from secretwatch._cli.sidecar.metrics import Metrics
from secretwatch._cli.sidecar.runner import Runner

from .conftest import TIMEOUT, events

EVENT = Event("/secret", 2, ("token",))


class Blocking:
    """An action whose attempt waits until the test releases it, failing then."""

    kind = "exec"
    target = "blocking"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, event: Event) -> None:
        self.calls += 1
        self.started.set()
        self.release.wait(TIMEOUT)
        raise ActionError("blocking: released")


class Recording:
    """An action that succeeds and counts its calls."""

    kind = "signal"
    target = "recording"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: Event) -> None:
        self.calls += 1


def test_close_skips_the_rest_and_does_not_retry(logs: LogCapture) -> None:
    """Closed while an attempt runs: that attempt is the last (no retry), the other actions
    of the change and the queued changes are reported as skipped, not run."""
    blocking, recording = Blocking(), Recording()
    runner = Runner([blocking, recording], retries=5, metrics=Metrics(), backoff=0.01)
    runner.submit(EVENT)
    runner.submit(Event("/other", 3, ("token",)))
    assert blocking.started.wait(TIMEOUT)
    runner.cancel()
    blocking.release.set()
    runner.close()
    assert not runner.alive
    assert (blocking.calls, recording.calls) == (1, 0)
    failed = events(logs, "secretwatch.action_failed")
    assert [entry["retrying"] for entry in failed] == [False]
    assert events(logs, "secretwatch.action_gave_up")[0]["attempts"] == 1
    skipped = events(logs, "secretwatch.actions_skipped")
    assert [(entry["volume_version"], entry["actions"]) for entry in skipped] == [
        (2, ["recording"]),
        (3, ["blocking", "recording"]),
    ]


def test_a_change_submitted_once_stopping_is_reported_skipped(logs: LogCapture) -> None:
    """Once the runner is stopping, a change submitted is reported as skipped at once: it
    would not run, and it is never left unreported in the queue."""
    recording = Recording()
    runner = Runner([recording], retries=0, metrics=Metrics())
    runner.cancel()
    runner.submit(EVENT)
    assert len(runner._waiting) == 0
    runner.close(TIMEOUT)
    assert recording.calls == 0
    skipped = events(logs, "secretwatch.actions_skipped")
    assert [(entry["volume_version"], entry["actions"]) for entry in skipped] == [
        (2, ["recording"])
    ]


def test_close_waits_at_most_its_timeout(logs: LogCapture) -> None:
    """An attempt that outlasts the close's timeout (a wait no action bounds) is left
    behind, logged, and close returns."""
    blocking = Blocking()
    runner = Runner([blocking], retries=0, metrics=Metrics())
    runner.submit(EVENT)
    assert blocking.started.wait(TIMEOUT)
    try:
        runner.close(0.2)
        assert runner.alive  # still in the attempt: close did not wait for it
        assert events(logs, "secretwatch.actions_abandoned") == [
            {"event": "secretwatch.actions_abandoned", "waited": 0.2, "log_level": "warning"}
        ]
    finally:
        blocking.release.set()


class Succeeding(Blocking):
    """An action whose attempt waits until the test releases it, then succeeds; the events
    it was called with are put in a queue."""

    def __init__(self) -> None:
        super().__init__()
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def __call__(self, event: Event) -> None:
        self.started.set()
        self.release.wait(TIMEOUT)
        self.events.put(event)


def test_changes_that_wait_are_merged_per_volume(logs: LogCapture) -> None:
    """While an action runs, later changes of a volume wait as one (the latest version, the
    keys of all), however many come: the queue holds one change per volume."""
    action = Succeeding()
    runner = Runner([action], retries=0, metrics=Metrics())
    try:
        runner.submit(EVENT)
        assert action.started.wait(TIMEOUT)
        for version in range(3, 103):
            runner.submit(Event("/secret", version, (f"key-{version % 3}",)))
        runner.submit(Event("/other", 7, ("token",)))
        runner.submit(Event("/secret", 103, ("token",)))
        assert len(runner._waiting) == 2
        action.release.set()
        run = [action.events.get(timeout=TIMEOUT) for _ in range(3)]
    finally:
        action.release.set()
        runner.close(TIMEOUT)
    assert run == [
        EVENT,
        Event("/secret", 103, ("key-0", "key-1", "key-2", "token")),
        Event("/other", 7, ("token",)),
    ]
    merged = events(logs, "secretwatch.actions_merged")
    assert len(merged) == 100
    assert (merged[0]["volume_version"], merged[0]["merged_volume_version"]) == (4, 3)
    assert events(logs, "secretwatch.actions_skipped") == []
