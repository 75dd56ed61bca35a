"""The test kit writes volumes as the kubelet does: layout, step order, events."""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

TIMESTAMPED = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\w+$")


def test_layout_matches_the_kubelet(tmp_path: Path) -> None:
    """..data links to a timestamped 0755 directory; each top-level key has a visible link."""
    vol = AtomicVolume(tmp_path / "v", mode=0o400)
    assert vol.write({"username": "u", "nested/dir/key": "k"})
    target = os.readlink(vol.path / "..data")
    assert TIMESTAMPED.match(target)
    assert stat.S_IMODE((vol.path / target).stat().st_mode) == 0o755
    assert stat.S_IMODE((vol.path / target / "username").stat().st_mode) == 0o400
    assert os.readlink(vol.path / "username") == "..data/username"
    assert os.readlink(vol.path / "nested") == "..data/nested"
    assert (vol.path / "nested" / "dir" / "key").read_text() == "k"
    assert sorted(p.name for p in vol.path.iterdir()) == sorted(
        ["..data", target, "username", "nested"]
    )


def test_rotation_replaces_the_version_and_the_links(tmp_path: Path) -> None:
    """Removed keys lose their links; the old version directory is deleted."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1", "b": "1"})
    old = vol.current
    assert vol.write({"a": "2", "c": "2"})
    assert old is not None
    assert not old.exists()
    assert not (vol.path / "b").is_symlink()
    assert (vol.path / "c").read_text() == "2"
    assert vol.read() == {"a": b"2", "c": b"2"}


def test_unchanged_payload_writes_nothing(tmp_path: Path) -> None:
    """Step 4: an identical payload is not written, unless forced."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    before = vol.current
    assert not vol.write({"a": "1"})
    assert vol.current == before
    assert vol.write({"a": "1"}, force=True)
    assert vol.current != before


def test_committed_at_is_the_time_of_the_commit(tmp_path: Path) -> None:
    """committed_at is taken just before ..data is renamed into place, and only by a write
    that commits: a latency is measured from it."""
    vol = AtomicVolume(tmp_path / "v")
    assert vol.committed_at is None
    before = time.perf_counter_ns()
    vol.write({"k": "1"})
    first = vol.committed_at
    assert first is not None
    assert before <= first <= time.perf_counter_ns()
    assert vol.write({"k": "1"}) is False  # nothing committed: the time stays
    assert vol.committed_at == first
    vol.write({"k": "2"})
    assert vol.committed_at is not None
    assert vol.committed_at > first


@pytest.mark.parametrize("key", ["", "/abs", "..x", "a/../b", "a//b", "./a", "x" * 256])
def test_invalid_keys_are_refused(tmp_path: Path, key: str) -> None:
    """Step 1: the kubelet's path validation."""
    with pytest.raises(ValueError, match="key"):
        AtomicVolume(tmp_path / "v").write({key: "x"})


def test_events_come_in_the_kubelets_order(tmp_path: Path) -> None:
    """A directory watch sees: new version created, ..data_tmp created, moved onto ..data,
    old version deleted (what the shared doc measured)."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    old = vol.current
    seen: list[tuple[str, str, str]] = []
    done = threading.Event()

    class Recorder(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type in {"opened", "closed", "closed_no_write", "modified", "attrib"}:
                return
            src = os.path.basename(os.fsdecode(event.src_path))
            dest = os.path.basename(os.fsdecode(event.dest_path)) if event.dest_path else ""
            seen.append((event.event_type, src, dest))
            if src == "sentinel":
                done.set()

    observer = Observer()
    observer.schedule(Recorder(), str(vol.path))
    observer.start()
    try:
        vol.write({"a": "2"})
        (vol.path / "sentinel").touch()  # its event comes after all of the write's
        assert done.wait(TIMEOUT)
    finally:
        observer.stop()
        observer.join(TIMEOUT)
    assert old is not None
    new = vol.current
    assert new is not None
    assert seen[:4] == [
        ("created", new.name, ""),
        ("created", "..data_tmp", ""),
        ("moved", "..data_tmp", "..data"),
        ("deleted", old.name, ""),
    ]


def test_write_in_place_and_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-place writes and per-file renames change the current version's file."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    current = vol.current
    vol.write_in_place("a", "2")
    assert vol.read() == {"a": b"2"}
    vol.replace("a", "3")
    assert vol.read() == {"a": b"3"}
    assert vol.current == current
    plain = AtomicVolume(tmp_path / "plain")
    plain.path.mkdir()
    real_rename = os.rename
    temp_names: list[str] = []

    def rename(src: str, dst: str) -> None:
        temp_names.append(os.path.basename(src))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    plain.replace("token", "t")
    monkeypatch.undo()
    assert temp_names[0].startswith("..token.")  # a '..' name: never a key mid-write
    assert (plain.path / "token").read_text() == "t"
    assert sorted(p.name for p in plain.path.iterdir()) == ["token"]


def test_remove_is_atomic(tmp_path: Path) -> None:
    """The volume vanishes at once and leaves nothing behind."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    vol.remove()
    assert not vol.path.exists()
    assert list(tmp_path.iterdir()) == []
    vol.remove()  # twice is fine


@pytest.mark.smoke
def test_secret_volume_fixture(secret_volume: AtomicVolume, tmp_path: Path) -> None:
    """The pytest plugin's fixture is an unwritten AtomicVolume in tmp_path."""
    assert secret_volume.path == tmp_path / "secret"
    assert not secret_volume.path.exists()
    secret_volume.write({"k": "v"})
    assert secret_volume.read() == {"k": b"v"}
