"""SecretWatcher: every rotation applied once, bad versions rejected, callbacks well behaved."""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from pathlib import Path

import pytest
from structlog.testing import LogCapture

import secretwatch
import secretwatch._watch.rejections as rejections_module
from secretwatch import (
    Change,
    DecodeError,
    ReadError,
    SecretWatcher,
    SymlinkEscapeError,
    TooLargeError,
    ValidationError,
    VolumeNotFoundError,
)
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, Recorder, bind_mount, events


def test_first_load_is_version_one(volume: AtomicVolume) -> None:
    """start() loads synchronously: values are there when watch() returns."""
    with secretwatch.watch(volume.path) as secrets:
        assert secrets["username"] == "app"
        assert secrets.get("password") == "first"
        assert secrets.get("absent", "default") == "default"
        assert "username" in secrets
        assert secrets.snapshot.version == 1
        assert dict(secrets.snapshot) == {"username": "app", "password": "first"}
        with pytest.raises(KeyError):
            secrets["absent"]


@pytest.mark.smoke
@pytest.mark.parametrize("debounce", [0.0, 0.1])
def test_every_rotation_is_seen(volume: AtomicVolume, debounce: float) -> None:
    """Not only the first: ten rotations in a row each produce one new version."""
    with secretwatch.watch(volume.path, debounce=debounce) as secrets:
        recorder = Recorder(secrets)
        for n in range(2, 12):
            volume.write({"username": "app", "password": f"pw-{n}"})
            change = recorder.change()
            assert change.new.version == n
            assert change.modified == {"password"}
            assert secrets["password"] == f"pw-{n}"


def test_added_removed_modified(volume: AtomicVolume) -> None:
    """A change names the keys added, removed and modified, and carries both snapshots."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write({"password": "second", "api-key": "k", "nested/x": "n"})
        change = recorder.change()
        assert change.added == {"api-key", "nested/x"}
        assert change.removed == {"username"}
        assert change.modified == {"password"}
        assert change.keys == {"api-key", "nested/x", "username", "password"}
        assert change.old["password"] == "first"
        assert change.new["password"] == "second"
        assert secrets.snapshot is change.new


def test_no_op_swap_does_not_bump_the_version(volume: AtomicVolume) -> None:
    """A new version directory with identical content changes nothing and fires nothing."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write(volume.read(), force=True)
        assert secrets.reload().version == 1
        volume.write({"username": "app", "password": "second"})
        change = recorder.change()
        assert (change.old.version, change.new.version) == (1, 2)
        assert change.modified == {"password"}


def test_burst_is_coalesced_into_one_reload(tmp_path: Path) -> None:
    """Twenty writes in place inside the debounce window become one change to the last one."""
    vol = AtomicVolume(tmp_path / "plain")
    vol.path.mkdir()
    vol.replace("token", "first")
    with secretwatch.watch(vol.path, debounce=2.0) as secrets:
        recorder = Recorder(secrets)
        for n in range(20):
            vol.write_in_place("token", f"burst-{n}")
        change = recorder.change()
        assert change.new.version == 2
        assert change.new["token"] == "burst-19"
        assert secrets.reload().version == 2  # nothing left behind the burst


@pytest.mark.parametrize("polling", [False, True])
def test_a_kubelet_swap_is_read_without_waiting_for_quiet(
    volume: AtomicVolume, polling: bool
) -> None:
    """The ..data swap commits a complete version: no debounce delays it, however long."""
    with secretwatch.watch(
        volume.path, debounce=3600, polling=polling, poll_interval=0.05
    ) as secrets:
        recorder = Recorder(secrets)
        for n in range(2, 5):
            volume.write({"username": "app", "password": f"pw-{n}"})
            assert recorder.change().new["password"] == f"pw-{n}"


def test_subscribe_to_keys(volume: AtomicVolume) -> None:
    """A subscription with keys= hears only about changes touching those keys."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        only_user = Recorder(secrets, keys={"username"})
        everything = Recorder(secrets)
        volume.write({"username": "app", "password": "second"})
        assert everything.change().new.version == 2
        volume.write({"username": "admin", "password": "second"})
        assert everything.change().new.version == 3
        assert only_user.change().new.version == 3  # version 2 was skipped


def test_subscribe_keys_must_not_be_a_string(volume: AtomicVolume) -> None:
    """keys="password" would silently mean {"p", "a", ...}: it is refused."""
    with secretwatch.watch(volume.path) as secrets, pytest.raises(TypeError):
        secrets.subscribe(print, keys="password")


def test_cancelled_subscription_is_not_called(volume: AtomicVolume) -> None:
    """cancel() stops the calls; other subscribers go on."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        cancelled: list[Change] = []
        subscription = secrets.subscribe(cancelled.append)
        subscription.cancel()
        subscription.cancel()  # twice is fine
        assert not subscription.active
        recorder = Recorder(secrets)
        volume.write({"password": "second"})
        assert recorder.change().new.version == 2
        secrets.subscribe(lambda change: None).cancel()
        volume.write({"password": "third"})
        assert recorder.change().new.version == 3
        assert cancelled == []


def test_wait_for_change(volume: AtomicVolume) -> None:
    """wait_for_change returns the new snapshot, or None on timeout."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        assert secrets.wait_for_change(timeout=0.01) is None
        done = threading.Event()

        def rotate() -> None:
            volume.write({"password": "second"})
            done.set()

        thread = threading.Thread(target=rotate)
        thread.start()
        snapshot = secrets.wait_for_change(timeout=TIMEOUT, since=1)
        thread.join()
        assert done.is_set()
        assert snapshot is not None
        assert snapshot.version == 2
        assert snapshot["password"] == "second"


def test_wait_for_change_since_a_version(volume: AtomicVolume) -> None:
    """since= returns at once when a newer version was applied before the call."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        seen = secrets.snapshot.version
        volume.write({"password": "second"})
        assert secrets.reload().version == 2  # applied before anyone waits
        snapshot = secrets.wait_for_change(timeout=TIMEOUT, since=seen)
        assert snapshot is not None
        assert snapshot.version == 2
        assert secrets.wait_for_change(timeout=0.01, since=2) is None


def test_wait_for_change_returns_none_when_stopped(volume: AtomicVolume) -> None:
    """A waiter is released by stop()."""
    secrets = secretwatch.watch(volume.path)
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(secrets.wait_for_change(TIMEOUT)))
    waiter.start()
    secrets.stop()
    waiter.join(TIMEOUT)
    assert result == [None]


async def test_async_changes(volume: AtomicVolume) -> None:
    """changes() yields each change in an asyncio loop and ends when the watcher stops."""
    secrets = secretwatch.watch(volume.path, debounce=0)
    seen: list[int] = []

    async def consume() -> None:
        async for change in secrets.changes():
            seen.append(change.new.version)
            if change.new.version == 3:
                secrets.stop()

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)  # let the consumer subscribe (an event-loop turn, not a wait)
    for version, password in [(2, "second"), (3, "third")]:
        await asyncio.to_thread(volume.write, {"password": password})
        # one change at a time: writes faster than the watcher reads are coalesced
        assert await asyncio.to_thread(secrets.wait_for_change, TIMEOUT, since=version - 1)
    await asyncio.wait_for(consumer, TIMEOUT)
    assert seen == [2, 3]


async def test_async_changes_filtered_by_key(volume: AtomicVolume) -> None:
    """changes(keys=...) skips changes to other keys."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        iterator = secrets.changes(keys={"username"}).__aiter__()
        first = asyncio.ensure_future(iterator.__anext__())
        await asyncio.sleep(0)
        await asyncio.to_thread(volume.write, {"username": "app", "password": "second"})
        assert await asyncio.to_thread(secrets.wait_for_change, TIMEOUT, since=1)
        await asyncio.to_thread(volume.write, {"username": "root", "password": "second"})
        change = await asyncio.wait_for(first, TIMEOUT)
        assert change.new.version == 3
        await iterator.aclose()  # type: ignore[attr-defined]


@pytest.mark.smoke
def test_decode_error_rejects_the_version(volume: AtomicVolume, logs: LogCapture) -> None:
    """A value that fails to decode rejects the whole version; the last good one stays."""
    volume.write({"config.json": '{"a": 1}', "password": "first"})
    with secretwatch.watch(volume.path, decoders={"*.json": "json"}, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write({"config.json": '{"a": ', "password": "second"})
        error = recorder.error()
        assert isinstance(error, DecodeError)
        assert error.key == "config.json"
        assert secrets.last_error is error
        assert secrets["password"] == "first"  # the whole version was rejected
        assert secrets["config.json"] == {"a": 1}
        assert len(events(logs, "secretwatch.rejected")) == 1
        volume.write({"config.json": '{"a": 2}', "password": "third"})
        assert recorder.change().new.version == 2
        assert secrets.last_error is None
        assert secrets["config.json"] == {"a": 2}
        assert recorder.changes.empty()


def test_validation_error_rejects_the_version(volume: AtomicVolume) -> None:
    """validate() raising keeps the last good snapshot and sets last_error."""

    def validate(snapshot: secretwatch.Snapshot) -> None:
        if "password" not in snapshot:
            raise ValidationError("password is required")
        int(snapshot["password"].strip())  # a ValueError that would quote the value

    volume.write({"password": "1234"})
    with secretwatch.watch(volume.path, validate=validate, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write({"username": "app"})
        error = recorder.error()
        assert isinstance(error, ValidationError)
        assert str(error) == f"{volume.path}: password is required"  # its own words, placed
        assert error.path == str(volume.path)
        volume.write({"password": "hunter2"})
        error = recorder.error()
        assert isinstance(error, ValidationError)
        assert "rejected by validate: ValueError (message withheld" in str(error)
        assert "hunter2" not in str(error)
        assert error.__cause__ is None
        assert secrets.snapshot.version == 1
        volume.write({"username": "app", "password": "5678"})
        assert recorder.change().new["password"] == "5678"


def test_validate_returning_false_rejects(volume: AtomicVolume) -> None:
    """validate may also return False to reject; any other return value accepts."""
    with secretwatch.watch(volume.path, validate=lambda s: "password" in s, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write({"username": "app"})
        assert "returned False" in str(recorder.error())
        volume.write({"password": "second"})
        assert recorder.change().new["password"] == "second"


def test_too_large_and_escaping_versions_are_rejected(tmp_path: Path) -> None:
    """Files over max_bytes and links out of the volume reject the version, not the watcher."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "small"})
    outside = tmp_path / "outside"
    outside.write_text("host file")
    with secretwatch.watch(vol.path, max_bytes=16, debounce=0) as secrets:
        recorder = Recorder(secrets)
        vol.write({"a": "x" * 17})
        assert isinstance(recorder.error(), TooLargeError)
        vol.write({"a": "fits"})
        assert recorder.change().new["a"] == "fits"
        current = vol.current
        assert current is not None
        (current / "link").symlink_to(outside)
        assert isinstance(recorder.error(), SymlinkEscapeError)
        assert secrets["a"] == "fits"
        (current / "link").unlink()
        vol.write({"a": "after"})
        assert recorder.change().new["a"] == "after"


def test_each_unreadable_rotation_is_reported(tmp_path: Path, logs: LogCapture) -> None:
    """Two rotations in a row that fail to read the same way are two reports; a resync of
    the second is none."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "small", "b": "1"})
    with secretwatch.watch(vol.path, max_bytes=16, debounce=0) as secrets:
        recorder = Recorder(secrets)
        vol.write({"a": "x" * 17, "b": "2"})
        assert isinstance(recorder.error(), TooLargeError)
        vol.write({"a": "x" * 17, "b": "3"})  # 'a' still too large: the same message
        assert isinstance(recorder.error(), TooLargeError)
        secrets.reload()  # the same version again: not a new report
        assert len(events(logs, "secretwatch.rejected")) == 2
        assert secrets["b"] == "1"


def test_same_rejected_version_is_reported_once(volume: AtomicVolume, logs: LogCapture) -> None:
    """Resyncs that re-read a rejected version do not log it again."""
    validate_calls = []

    def validate(snapshot: secretwatch.Snapshot) -> None:
        validate_calls.append(snapshot.version)
        if snapshot.get("password") == "bad":
            raise ValueError("bad password")

    with secretwatch.watch(volume.path, validate=validate, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write({"password": "bad"})
        recorder.error()
        calls = len(validate_calls)
        volume.write({"password": "bad"}, force=True)  # the same bad content, read again
        volume.write({"password": "bad"}, force=True)
        volume.write({"password": "good"})  # loads run in order: the re-reads came first
        assert recorder.change().new["password"] == "good"
        assert len(validate_calls) == calls + 1  # only "good": "bad" was not even decoded
        volume.write({"password": "bad"})
        recorder.error()  # a new rejection after a good version is reported again
        secrets.reload()  # forced: validated again, reported once
        assert len(events(logs, "secretwatch.rejected")) == 2


def test_first_load_rejected_raises(volume: AtomicVolume) -> None:
    """Nothing good to keep: start() raises and the watcher is stopped."""
    volume.write({"config.json": "not json"})
    watcher = SecretWatcher(volume.path, decoders={"config.json": "json"})
    with pytest.raises(DecodeError, match=r"config\.json"):
        watcher.start()
    assert not watcher.running
    with pytest.raises(RuntimeError, match="stopped"):
        watcher.start()


def test_required_missing_volume_raises(tmp_path: Path) -> None:
    """required=True (the default) and no such path: start() raises, naming it."""
    with pytest.raises(VolumeNotFoundError, match="nope"):
        secretwatch.watch(tmp_path / "nope")


def test_optional_missing_volume_is_loaded_when_it_appears(tmp_path: Path) -> None:
    """required=False waits for the volume, then loads it as version 1."""
    vol = AtomicVolume(tmp_path / "later" / "secret")
    with secretwatch.watch(vol.path, required=False, debounce=0) as secrets:
        assert secrets.snapshot.version == 0
        assert len(secrets.snapshot) == 0
        assert isinstance(secrets.last_error, VolumeNotFoundError)
        recorder = Recorder(secrets)
        vol.write({"token": "t"})
        change = recorder.change()
        assert change.new.version == 1
        assert change.added == {"token"}
        assert secrets["token"] == "t"
        assert secrets.last_error is None


def test_volume_deleted_and_recreated(volume: AtomicVolume) -> None:
    """A deleted volume keeps its last good snapshot; it recovers when it returns."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.remove()
        assert isinstance(recorder.error(), VolumeNotFoundError)
        assert secrets["password"] == "first"
        volume.write({"username": "app", "password": "first"})
        assert secrets.reload().version == 1  # same content: recovered, not changed
        assert secrets.last_error is None
        volume.remove()
        assert isinstance(recorder.error(), VolumeNotFoundError)
        volume.write({"username": "app", "password": "second"})
        assert recorder.change().new["password"] == "second"
        volume.write({"username": "app", "password": "third"})  # still watching after
        assert recorder.change().new["password"] == "third"


def test_reload_applies_and_returns_the_snapshot(volume: AtomicVolume) -> None:
    """reload() re-reads synchronously (here with inotify unable to beat it: polling, 1 h)."""
    with secretwatch.watch(volume.path, polling=True, poll_interval=3600) as secrets:
        volume.write({"password": "second"})
        snapshot = secrets.reload()
        assert snapshot.version == 2
        assert secrets["password"] == "second"


def test_reload_needs_a_running_watcher(volume: AtomicVolume) -> None:
    """reload() before start() or after stop() is a usage error."""
    watcher = SecretWatcher(volume.path)
    with pytest.raises(RuntimeError):
        watcher.reload()


def test_callbacks_run_in_order_one_at_a_time_off_the_event_thread(
    volume: AtomicVolume,
) -> None:
    """A slow callback delays later calls, never overlaps them, and runs on a worker."""
    from secretwatch._watch.inotify import inotify

    release = threading.Event()
    running = threading.Semaphore(1)
    versions: list[int] = []
    threads: set[str] = set()
    overlaps: list[int] = []

    def slow(change: Change) -> None:
        if not running.acquire(blocking=False):
            overlaps.append(change.new.version)
            return
        try:
            threads.add(threading.current_thread().name)
            assert threading.current_thread() is not inotify()
            release.wait(TIMEOUT)
            versions.append(change.new.version)
        finally:
            running.release()

    with secretwatch.watch(volume.path, debounce=0) as secrets:
        secrets.subscribe(slow)
        recorder = Recorder(secrets)
        for n in range(2, 7):
            volume.write({"password": f"pw-{n}"})
            assert secrets.wait_for_change(TIMEOUT, since=n - 1) is not None  # slow() blocks
        assert secrets.snapshot.version == 6
        release.set()
        for _ in range(5):
            recorder.change()
    assert versions == [2, 3, 4, 5, 6]
    assert overlaps == []
    assert all(name.startswith("secretwatch-callback") for name in threads)


def test_failing_callback_is_logged_and_isolated(volume: AtomicVolume, logs: LogCapture) -> None:
    """An exception in one callback is logged; other callbacks and later changes go on."""

    def broken(change: Change) -> None:
        raise RuntimeError("callback bug")

    with secretwatch.watch(volume.path, debounce=0) as secrets:
        secrets.subscribe(broken)
        recorder = Recorder(secrets)
        volume.write({"password": "second"})
        assert recorder.change().new.version == 2
        volume.write({"password": "third"})
        assert recorder.change().new.version == 3
    failures = events(logs, "secretwatch.callback_failed")
    assert len(failures) == 2
    assert failures[0]["callback"].endswith("broken")  # type: ignore[union-attr]
    assert failures[0]["error_type"] == "RuntimeError"
    assert any(frame.endswith("in broken") for frame in failures[0]["frames"])  # type: ignore[attr-defined]
    assert "exc_info" not in failures[0]  # no traceback whose locals a renderer could show


def test_subscriber_registered_before_start_sees_the_first_load(volume: AtomicVolume) -> None:
    """The first load is a change from the empty version 0."""
    watcher = SecretWatcher(volume.path)
    recorder = Recorder(watcher)
    with watcher:
        change = recorder.change()
    assert (change.old.version, change.new.version) == (0, 1)
    assert change.added == {"username", "password"}


def test_plain_directory_and_in_place_writers(tmp_path: Path) -> None:
    """A plain directory is watched for renames (Vault Agent) and in-place writes."""
    vol = AtomicVolume(tmp_path / "plain")
    vol.path.mkdir()
    vol.replace("token", "t1")
    with secretwatch.watch(vol.path, debounce=0.05) as secrets:
        recorder = Recorder(secrets)
        vol.replace("token", "t2")
        assert recorder.change().new["token"] == "t2"
        vol.write_in_place("token", "t3")
        recorder.change_where("token", "t3")
        vol.write_in_place("sub/nested", "n")
        recorder.change_where("sub/nested", "n")
        vol.write_in_place("sub/nested", "n2")  # a watch on the new subdirectory too
        assert recorder.change_where("sub/nested", "n2").modified == {"sub/nested"}


def test_in_place_write_into_a_kubelet_version(volume: AtomicVolume) -> None:
    """Editing the current version's file in place is seen (the data directory is watched)."""
    with secretwatch.watch(volume.path, debounce=0.05) as secrets:
        recorder = Recorder(secrets)
        volume.write_in_place("password", "edited")
        recorder.change_where("password", "edited")


def test_single_file_watch_sees_every_rotation(volume: AtomicVolume) -> None:
    """Watching one key of a kubelet volume follows the ..data swap, every time."""
    with secretwatch.watch(volume.path / "password", debounce=0) as secrets:
        assert secrets["password"] == "first"
        recorder = Recorder(secrets)
        for n in range(3):
            volume.write({"username": "app", "password": f"pw-{n}"})
            assert recorder.change().new["password"] == f"pw-{n}"
        volume.write({"username": "changed", "password": "pw-2"})
        assert secrets.reload().version == 4  # another key changed: not this volume's business


def test_decoders_and_values(tmp_path: Path) -> None:
    """Decoders by exact key and by pattern; values are str/bytes with redacted reprs."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write(
        {
            "password": "pw",
            "keystore.p12": b"\x00\xff",
            "service-key.json": json.dumps({"clientsecret": "cs", "n": 1}),
            "ca.b64": "aGVsbG8=\n",
            "port": "5432",
        }
    )
    decoders = {"*.p12": "bytes", "*.json": "json", "ca.b64": "base64", "port": int}
    with secretwatch.watch(vol.path, decoders=decoders) as secrets:  # type: ignore[arg-type]
        assert secrets["password"] == "pw"
        assert isinstance(secrets["password"], secretwatch.RedactedStr)
        assert secrets["keystore.p12"] == b"\x00\xff"
        assert secrets["service-key.json"] == {"clientsecret": "cs", "n": 1}
        assert repr(secrets["service-key.json"]["clientsecret"]) == "RedactedStr('**********')"
        assert secrets["ca.b64"] == b"hello"
        assert secrets["port"] == 5432


def test_unknown_decoder_name_is_refused(tmp_path: Path) -> None:
    """A typo in a decoder name fails at construction."""
    with pytest.raises(ValueError, match="unknown decoder 'jsn'"):
        SecretWatcher(tmp_path, decoders={"a": "jsn"})  # type: ignore[dict-item]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    """Negative intervals and sizes are refused at construction."""
    bad: list[dict[str, object]] = [
        {"debounce": -1},
        {"debounce": float("nan")},  # would wedge the shared timer thread
        {"debounce": float("inf")},
        {"resync_interval": 0},
        {"poll_interval": 0},
        {"poll_interval": float("nan")},
        {"max_bytes": 0},
        {"max_bytes": 1.5},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            SecretWatcher(tmp_path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="debounce must be a number"):
        SecretWatcher(tmp_path, debounce="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path must not be empty"):
        SecretWatcher("")


def test_relative_path_survives_a_chdir(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path is made absolute at construction: a later chdir does not move the volume."""
    monkeypatch.chdir(volume.path.parent)
    with secretwatch.watch(volume.path.name, debounce=0) as secrets:
        assert secrets.path == str(volume.path)
        monkeypatch.chdir("/")
        volume.write({"password": "second"})
        assert secrets.reload()["password"] == "second"


def test_transient_errors_are_not_rejections(tmp_path: Path, logs: LogCapture) -> None:
    """A volume caught mid-write is neither an error nor logged as a rejection."""
    vol = tmp_path / "v"
    vol.mkdir()
    (vol / "a").write_text("1")
    with secretwatch.watch(vol, debounce=0) as secrets:
        (vol / "..2026_11_28_21_34_21.1").mkdir()  # an atomic writer's first write begins
        assert secrets.reload().version == 1
        assert secrets.last_error is None
        assert events(logs, "secretwatch.rejected") == []
        busy = events(logs, "secretwatch.busy")  # only noted, at debug level
        # reload() notes it, and so may a load after the event of the mkdir
        assert busy
        assert all("is being written" in str(entry["reason"]) for entry in busy)


def test_log_events_carry_paths_versions_and_key_names(
    volume: AtomicVolume, logs: LogCapture
) -> None:
    """loaded, changed and rejected events say where, which version and which keys."""
    with secretwatch.watch(volume.path, debounce=0, decoders={"*.json": "json"}) as secrets:
        recorder = Recorder(secrets)
        volume.write({"username": "app", "password": "second", "new": "n"})
        recorder.change()
        volume.write({"username": "app", "password": "second", "new": "n", "x.json": "{"})
        recorder.error()
    path = str(volume.path)
    (loaded,) = events(logs, "secretwatch.loaded")
    assert loaded["path"] == path
    assert (loaded["volume_version"], loaded["keys"]) == (1, ["password", "username"])
    assert (loaded["layout"], loaded["mode"]) == ("kubelet", "inotify")
    (changed,) = events(logs, "secretwatch.changed")
    assert (changed["volume_version"], changed["added"], changed["modified"]) == (
        2,
        ["new"],
        ["password"],
    )
    (rejected,) = events(logs, "secretwatch.rejected")
    assert (rejected["key"], rejected["error_type"], rejected["volume_version"]) == (
        "x.json",
        "DecodeError",
        2,
    )
    assert "first" not in repr(logs.entries)
    assert "second" not in repr(logs.entries)


def test_subpath_mount_warns(tmp_path: Path, logs: LogCapture) -> None:
    """Watching a bind-mounted file (a subPath mount) warns that it will never rotate."""
    source = tmp_path / "volume-file"
    source.write_text("s")
    target = tmp_path / "app" / "password"
    target.parent.mkdir()
    target.write_text("")
    with secretwatch.watch(target):
        pass
    assert events(logs, "secretwatch.subpath_mount") == []  # an ordinary file
    with bind_mount(source, target), secretwatch.watch(target) as secrets:
        assert secrets["password"] == "s"
    (warning,) = events(logs, "secretwatch.subpath_mount")
    assert warning["path"] == str(target)
    assert "never sees a rotation" in str(warning["hint"])


def test_volume_stuck_mid_write_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """A writer that died mid-write (its '..' directory left behind) is reported, not ignored."""
    monkeypatch.setattr(rejections_module, "STUCK_AFTER", 0.0)
    root = tmp_path / "plain"
    root.mkdir()
    (root / "token").write_text("t1")
    with secretwatch.watch(root, debounce=0) as secrets:
        recorder = Recorder(secrets)
        (root / "..2026_11_28_21_34_21.1").mkdir()  # left by a crashed atomic writer
        error = recorder.error()
        assert isinstance(error, ReadError)
        assert not error.transient
        assert "being written for over 0 s" in str(error)
        assert secrets["token"] == "t1"
        (root / "..2026_11_28_21_34_21.1").rmdir()
        AtomicVolume(root).replace("token", "t2")
        assert recorder.change().new["token"] == "t2"
        assert secrets.last_error is None


def test_reload_from_validate_is_refused_not_a_deadlock(volume: AtomicVolume) -> None:
    """Calling reload() inside validate would wait on its own load: it raises instead."""
    calls: list[str] = []

    def validate(snapshot: secretwatch.Snapshot) -> None:
        if snapshot.version > 1:
            try:
                secrets.reload()
            except RuntimeError as exc:
                calls.append(str(exc))
                raise

    secrets = SecretWatcher(volume.path, validate=validate, debounce=0)
    with secrets:
        recorder = Recorder(secrets)
        volume.write({"password": "second"})
        assert isinstance(recorder.error(), ValidationError)
    assert calls == ["reload() can't be called from validate or a decoder"]


def test_first_load_error_carries_no_frames_with_raw_bytes(volume: AtomicVolume) -> None:
    """The traceback of start()'s error stops at start(): no frame below holds the bytes."""
    volume.write({"n": "CANARY-not-a-number"})
    with pytest.raises(DecodeError) as info:
        secretwatch.watch(volume.path, decoders={"n": int})
    frames = [frame for frame, _ in traceback.walk_tb(info.value.__traceback__)]
    ours = [frame for frame in frames if "secretwatch" in frame.f_code.co_filename]
    assert [frame.f_code.co_name for frame in ours] == ["watch", "start"]
    assert all("CANARY" not in repr(frame.f_locals) for frame in ours)


def test_a_resync_years_away_leaves_the_timers_running(volume: AtomicVolume) -> None:
    """A resync interval past what a thread's wait can take does not stop the shared timer
    thread (it did, with OverflowError): the debounce of an in-place write still fires."""
    with secretwatch.watch(volume.path, resync_interval=1e300, debounce=0.05) as secrets:
        recorder = Recorder(secrets)
        volume.write_in_place("password", "edited")
        recorder.change_where("password", "edited")
