"""The fault matrix: one test per fault, each ending the same way: the watcher is still
watching (the next valid version is applied), the last good value was kept, and the error
is clear (it names the path, and the key where there is one, never a value).

Faults tested elsewhere, with the same ending: an unreadable file
(``test_permissions.py``), inotify unable to start and its queue overflowing
(``test_monitor.py``), a webhook down then up and a command that times out
(``test_sidecar_watch.py``), ``run``'s command crashing on its own
(``test_sidecar_run.py``).
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import LogCapture

import secretwatch
from secretwatch import (
    DecodeError,
    ReadError,
    SecretWatchError,
    SymlinkEscapeError,
    TooLargeError,
    ValidationError,
    VolumeNotFoundError,
)
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, Recorder, events

CANARY = "canary-good-value-8d2a"  # the secret in force: never in a log, error or repr
BAD = "canary-bad-value-5e1f"  # what bad versions hold: never anywhere either
GOOD = {"username": "app", "password": CANARY}
MAX_BYTES = 64


@pytest.fixture
def volume(tmp_path: Path) -> AtomicVolume:
    """A kubelet-style volume holding ``GOOD``."""
    vol = AtomicVolume(tmp_path / "secret")
    vol.write(GOOD)
    return vol


@pytest.fixture(autouse=True)
def no_canary_anywhere(
    logs: LogCapture, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """After each fault: neither canary in structlog's events, stdlib logging or output."""
    caplog.set_level(logging.DEBUG)
    yield
    output = "".join(capsys.readouterr())
    for canary in (CANARY, BAD):
        assert canary not in str(logs.entries)
        assert canary not in caplog.text
        assert canary not in output


def password_not_empty(snapshot: secretwatch.Snapshot) -> None:
    if not snapshot.get("password"):
        raise ValidationError("the password is empty", key="password")


def watch(volume: AtomicVolume, **options: object) -> secretwatch.SecretWatcher:
    return secretwatch.watch(
        volume.path,
        decoders={"*.json": "json", "port": int},  # int() quotes its input when it fails
        validate=password_not_empty,
        max_bytes=MAX_BYTES,
        debounce=0,
        **options,  # type: ignore[arg-type]
    )


def still_watching(secrets: secretwatch.SecretWatcher, volume: AtomicVolume) -> None:
    """The last good value is in force, and the next valid version is applied."""
    assert dict(secrets.snapshot) == GOOD
    shown = repr(secrets) + repr(secrets.snapshot) + repr(dict(secrets.snapshot))
    assert CANARY not in shown
    seen = secrets.snapshot.version
    volume.write({**GOOD, "password": "next"})
    while (snapshot := secrets.wait_for_change(TIMEOUT, since=seen)) is not None:
        if snapshot.get("password") == "next":
            break
        seen = snapshot.version
    assert secrets["password"] == "next", "the watcher stopped watching"
    assert secrets.last_error is None


def clear(error: SecretWatchError, volume: AtomicVolume, key: str | None) -> None:
    """Names the path and the key; shows no value."""
    assert str(volume.path) in str(error)
    assert error.key == key
    if key is not None:
        assert repr(key) in str(error)
    shown = str(error) + repr(error) + "".join(traceback.format_exception(error))
    assert BAD not in shown
    assert CANARY not in shown


def bad_json(volume: AtomicVolume, tmp_path: Path) -> None:
    volume.write({**GOOD, "config.json": f'{{"token": "{BAD}"'})


def not_a_number(volume: AtomicVolume, tmp_path: Path) -> None:
    volume.write({**GOOD, "port": BAD})


def invalid(volume: AtomicVolume, tmp_path: Path) -> None:
    volume.write({"username": BAD, "password": ""})


def too_large(volume: AtomicVolume, tmp_path: Path) -> None:
    volume.write({**GOOD, "password": BAD * 4})


def dangling_data(volume: AtomicVolume, tmp_path: Path) -> None:
    """``..data`` points to a version that is gone (moved away, to come back)."""
    current = volume.current
    assert current is not None
    current.rename(tmp_path / "away")


def escaping_link(volume: AtomicVolume, tmp_path: Path) -> None:
    """A key that is a link to a file outside the volume."""
    outside = tmp_path / "host-file"
    outside.write_text(BAD)
    current = volume.current
    assert current is not None
    (current / "..link").symlink_to(outside)  # a '..' name is never a key
    (current / "..link").rename(current / "password")  # one step: no version without it


def deleted(volume: AtomicVolume, tmp_path: Path) -> None:
    volume.remove()


def undo_dangling(volume: AtomicVolume, tmp_path: Path) -> None:
    current = volume.current
    assert current is not None
    (tmp_path / "away").rename(current)


Fault = Callable[[AtomicVolume, Path], None]
REJECTIONS: list[tuple[str, Fault, type[SecretWatchError], str | None]] = [
    ("decoding fails", bad_json, DecodeError, "config.json"),
    ("a decoder whose error quotes the value", not_a_number, DecodeError, "port"),
    ("validation fails", invalid, ValidationError, "password"),
    ("file larger than the limit", too_large, TooLargeError, "password"),
    ("..data dangling", dangling_data, ReadError, None),
    ("link out of the volume", escaping_link, SymlinkEscapeError, "password"),
    ("volume deleted, then recreated", deleted, VolumeNotFoundError, None),
]


@pytest.mark.parametrize(
    ("fault", "error_type", "key"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_a_bad_version_is_rejected_and_watching_goes_on(
    *,
    volume: AtomicVolume,
    tmp_path: Path,
    logs: LogCapture,
    fault: Fault,
    error_type: type[SecretWatchError],
    key: str | None,
) -> None:
    with watch(volume) as secrets:
        recorder = Recorder(secrets)
        fault(volume, tmp_path)
        error = recorder.error()
        assert isinstance(error, error_type)
        assert secrets.last_error is error
        clear(error, volume, key)
        assert dict(secrets.snapshot) == GOOD
        if fault is dangling_data:
            undo_dangling(volume, tmp_path)  # the kubelet's next write needs the old version
        still_watching(secrets, volume)
    logged = events(logs, "secretwatch.rejected") + events(logs, "secretwatch.missing")
    assert len(logged) == 1
    assert BAD not in str(logs.entries)


def test_a_callback_that_raises(volume: AtomicVolume, logs: LogCapture) -> None:
    """Logged with the callback's name and the error's type (no locals, no value); the
    change is applied, and the callback is called again on the next one."""
    calls = []

    def broken(change: secretwatch.Change) -> None:
        calls.append(change.new.version)
        secret = change.new["password"]  # a local holding the value, as in real code
        raise RuntimeError(f"callback bug with {secret}")  # and a message quoting it

    with watch(volume) as secrets:
        secrets.subscribe(broken)
        recorder = Recorder(secrets)
        volume.write({**GOOD, "password": BAD})
        recorder.change()
        volume.write(GOOD)
        recorder.change()
        still_watching(secrets, volume)
    (failed, *_) = events(logs, "secretwatch.callback_failed")
    assert failed["error_type"] == "RuntimeError"
    assert "broken" in str(failed["callback"])
    assert BAD not in str(logs.entries)
    assert calls[:2] == [2, 3]


def test_a_callback_that_blocks_longer_than_the_debounce(volume: AtomicVolume) -> None:
    """Versions keep being applied (and readable) while a callback is stuck; it then sees
    each of them, in order."""
    release = threading.Event()
    seen: queue.SimpleQueue[int] = queue.SimpleQueue()

    def stuck(change: secretwatch.Change) -> None:
        release.wait(TIMEOUT)
        seen.put(change.new.version)

    with secretwatch.watch(volume.path, debounce=0.01) as secrets:
        secrets.subscribe(stuck)
        for n in range(2, 5):
            volume.write({**GOOD, "password": f"pw-{n}"})
            assert secrets.wait_for_change(TIMEOUT, since=n - 1) is not None
        assert secrets["password"] == "pw-4"
        release.set()
        volume.write(GOOD)
        assert secrets.wait_for_change(TIMEOUT, since=4) is not None
        assert [seen.get(timeout=TIMEOUT) for _ in range(4)] == [2, 3, 4, 5]
        still_watching(secrets, volume)


def test_a_volume_missing_at_start(tmp_path: Path) -> None:
    """``required=False``: an empty snapshot and a clear error until it appears."""
    volume = AtomicVolume(tmp_path / "later" / "secret")
    with secretwatch.watch(volume.path, required=False, debounce=0) as secrets:
        assert secrets.snapshot.version == 0
        assert isinstance(secrets.last_error, VolumeNotFoundError)
        clear(secrets.last_error, volume, None)
        volume.write(GOOD)
        assert secrets.wait_for_change(TIMEOUT, since=0) is not None
        still_watching(secrets, volume)


def test_an_in_place_write_caught_half_done(volume: AtomicVolume) -> None:
    """A writer that truncates, then writes: the empty file is a validation failure, never
    applied; once the writer is done, the volume is whole again."""
    with watch(volume) as secrets:
        recorder = Recorder(secrets)
        current = volume.current
        assert current is not None
        with open(current / "password", "wb") as file:  # truncated, and held so
            file.flush()
            error = recorder.error()
            assert isinstance(error, ValidationError)
            assert dict(secrets.snapshot) == GOOD
            file.write(CANARY.encode())  # the same value again: nothing new to apply
        still_watching(secrets, volume)


def test_a_volume_removed_between_its_listing_and_its_watch(
    volume: AtomicVolume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unmounted at the worst moment (listed, not yet watched nor read): reported, and
    watched again, so that it is seen when it comes back, with no resync to help."""
    with watch(volume, resync_interval=None) as secrets:
        recorder = Recorder(secrets)
        arm = secrets._arm_listing
        written = threading.Event()
        removed: list[Path] = []

        def removed_after_listing(listing: Any) -> bool:
            if not removed:  # the race, made to happen: no timing can make it for sure
                written.wait(TIMEOUT)  # once the writer is done with the volume
                removed.append(volume.path.rename(tmp_path / "unmounted"))
            return arm(listing)

        monkeypatch.setattr(secrets, "_arm_listing", removed_after_listing)
        volume.write_in_place("password", "second")  # a load that adds no new watch
        written.set()
        assert isinstance(recorder.error(), VolumeNotFoundError)
        monkeypatch.undo()
        assert removed[0].is_dir()  # kept: its deletion would be an event to react to
        volume.write(GOOD)  # mounted again
        still_watching(secrets, volume)
