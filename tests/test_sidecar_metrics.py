"""The sidecar's metrics follow the state they report, whenever it changes."""

from __future__ import annotations

import errno

import pytest
from watchdog.observers.inotify_c import InotifyFD

from secretwatch._cli.sidecar.config import ActionOptions
from secretwatch._cli.sidecar.service import Service
from secretwatch.testing import AtomicVolume

from .conftest import Recorder

CANARY = "CANARY-metrics-7e0a"


def sample(metrics: bytes, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.decode().splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rpartition(" ")[2])
    raise AssertionError(f"no {name}{{{wanted}}} in:\n{metrics.decode()}")


def test_the_watch_mode_follows_a_fallback_to_polling(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a watcher falls back to polling mid-run (the inotify watch limit reached), the
    mode metric says polling, not inotify; the version follows every change."""
    service = Service([str(volume.path)], ActionOptions(debounce=0, poll_interval=0.02), [])
    try:
        assert service.start()
        (watcher,) = service.watchers
        path = watcher.path
        before = service.metrics.render()
        assert sample(before, "secretwatch_reloads_total", path=path) == 0  # there, at 0
        assert sample(before, "secretwatch_rejected_reloads_total", path=path) == 0
        assert sample(before, "secretwatch_watch_mode", path=path, mode="inotify") == 1
        assert sample(before, "secretwatch_version", path=path) == 1

        def watch_limit(*args: object) -> object:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

        recorder = Recorder(watcher)
        monkeypatch.setattr(InotifyFD, "add_callback", watch_limit)  # what a full limit does
        volume.write({"username": "app", "password": CANARY})  # a new version: a new watch
        assert recorder.change().new.version == 2
        assert watcher.mode == "polling"
        after = service.metrics.render()
        assert sample(after, "secretwatch_watch_mode", path=path, mode="polling") == 1
        assert sample(after, "secretwatch_watch_mode", path=path, mode="inotify") == 0
        assert sample(after, "secretwatch_version", path=path) == 2
        assert sample(after, "secretwatch_reloads_total", path=path) == 1
        assert CANARY.encode() not in after
    finally:
        service.close()
