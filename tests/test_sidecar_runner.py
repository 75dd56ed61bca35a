"""The sidecar's action runner, in process, with actions of the test's own: stopping."""

from __future__ import annotations

import threading

from structlog.testing import LogCapture

from secretwatch._sidecar.actions import ActionError, Event
from secretwatch._sidecar.metrics import Metrics
from secretwatch._sidecar.runner import Runner

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
    runner.submit(Event("/secret", 3, ("token",)))
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
    assert [(entry["version"], entry["actions"]) for entry in skipped] == [
        (2, ["recording"]),
        (3, ["blocking", "recording"]),
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
