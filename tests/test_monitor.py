"""Where change notices come from: shared inotify, polling, the fallback, the resync."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from structlog.testing import LogCapture
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, InotifyFD

import secretwatch
import secretwatch._watch.inotify as inotify_module
from secretwatch._watch.inotify import InotifySource, _DirWatch, inotify
from secretwatch._watch.runtime import CALLBACK_WORKERS, LOAD_WORKERS
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, Recorder, events


def inotify_instances() -> int:
    """inotify file descriptors this process holds."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == "anon_inode:inotify"
        except OSError:
            continue
    return count


def watched_dirs(watcher: secretwatch.SecretWatcher) -> list[str]:
    source = watcher._monitor._source
    assert isinstance(source, InotifySource)
    return sorted(source._watches)


def test_watches_directories_never_key_files(volume: AtomicVolume) -> None:
    """The volume directory and the current version are watched; no file is."""
    with secretwatch.watch(volume.path) as secrets:
        watched = watched_dirs(secrets)
        assert str(volume.path) in watched
        assert str(volume.current) in watched
        assert all(os.path.isdir(path) for path in watched)


def test_watches_follow_the_rotation(volume: AtomicVolume) -> None:
    """After rotations the watch set is the volume and the new version, nothing stale."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        for n in range(2, 22):
            volume.write({"password": f"pw-{n}"})
            assert secrets.wait_for_change(TIMEOUT, since=n - 1) is not None
        assert watched_dirs(secrets) == sorted([str(volume.path), str(volume.current)])


def test_polling_mode(volume: AtomicVolume) -> None:
    """polling=True sees kubelet rotations and in-place writes without inotify."""
    with secretwatch.watch(volume.path, polling=True, poll_interval=0.02, debounce=0) as secrets:
        assert secrets.mode == "polling"
        recorder = Recorder(secrets)
        volume.write({"password": "second"})
        assert recorder.change().new["password"] == "second"
        volume.write_in_place("password", "edited in place")
        recorder.change_where("password", "edited in place")
        volume.remove()
        assert isinstance(recorder.error(), secretwatch.VolumeNotFoundError)
        volume.write({"password": "back"})
        assert recorder.change().new["password"] == "back"


def test_polling_from_the_environment(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECRETWATCH_POLLING=1 turns polling on when polling= is not given."""
    monkeypatch.setenv("SECRETWATCH_POLLING", "1")
    with secretwatch.watch(volume.path) as secrets:
        assert secrets.mode == "polling"
    with secretwatch.watch(volume.path, polling=False) as secrets:
        assert secrets.mode == "inotify"


def test_falls_back_to_polling_when_inotify_cannot_start(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """inotify_init failing (the instance limit, EMFILE) means polling, with a warning."""

    def instance_limit(cls: type[InotifyFD]) -> int:
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(inotify_module, "_shared", None)  # as in a process yet to start one
    monkeypatch.setattr(InotifyFD, "_create_inotify_fd", classmethod(instance_limit))
    with secretwatch.watch(volume.path, poll_interval=0.02, debounce=0) as secrets:
        assert secrets.mode == "polling"
        recorder = Recorder(secrets)
        volume.write({"password": "second"})
        assert recorder.change().new["password"] == "second"
    (warning,) = events(logs, "secretwatch.polling_fallback")
    assert "instance limit" in str(warning["reason"])


def test_falls_back_to_polling_at_the_watch_limit(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """A full max_user_watches (ENOSPC) after a rotation switches that watcher to polling."""
    with secretwatch.watch(volume.path, poll_interval=0.02, debounce=0) as secrets:
        recorder = Recorder(secrets)

        def watch_limit(*args: object) -> object:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

        monkeypatch.setattr(InotifyFD, "add_callback", watch_limit)
        volume.write({"password": "second"})  # needs a watch on the new version: refused
        assert recorder.change().new["password"] == "second"
        assert secrets.mode == "polling"
        monkeypatch.undo()
        volume.write({"password": "third"})
        assert recorder.change().new["password"] == "third"
    assert len(events(logs, "secretwatch.polling_fallback")) == 1


def test_resync_catches_lost_events(volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every event lost, the periodic resync still applies the rotation."""
    monkeypatch.setattr(_DirWatch, "on_event", lambda self, event: None)
    with secretwatch.watch(volume.path, resync_interval=0.05) as secrets:
        volume.write({"password": "second"})
        snapshot = secrets.wait_for_change(TIMEOUT, since=1)
        assert snapshot is not None
        assert snapshot["password"] == "second"


def test_queue_overflow_triggers_a_reload(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's IN_Q_OVERFLOW (events were lost) makes every watcher look again."""
    monkeypatch.setattr(_DirWatch, "on_event", lambda self, event: None)  # the lost events
    with secretwatch.watch(volume.path, resync_interval=None) as secrets:
        volume.write({"password": "second"})
        overflow = InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b"")  # type: ignore[arg-type]
        inotify().handle_event(overflow)  # what watchdog's reader thread does with it
        snapshot = secrets.wait_for_change(TIMEOUT, since=1)
        assert snapshot is not None
        assert snapshot["password"] == "second"


def test_threads_and_inotify_instances_do_not_grow_with_watchers(tmp_path: Path) -> None:
    """100 watchers share one inotify instance and a few threads."""
    volumes = [AtomicVolume(tmp_path / f"secret-{n}") for n in range(100)]
    for vol in volumes:
        vol.write({"token": "1"})
    secretwatch.watch(volumes[0].path).stop()  # the shared machinery exists from here on
    threads_before = threading.active_count()
    instances_before = inotify_instances()
    watchers = [secretwatch.watch(vol.path, debounce=0) for vol in volumes]
    try:
        for vol, watcher in zip(volumes, watchers, strict=True):
            vol.write({"token": "2"})
            snapshot = watcher.wait_for_change(TIMEOUT, since=1)
            assert snapshot is not None
            assert snapshot["token"] == "2"
        assert inotify_instances() == instances_before
        # workers come and go with the work, within the pools' fixed sizes; no other
        # thread is started for a watcher
        names = [thread.name for thread in threading.enumerate()]
        loads = sum(name.startswith("secretwatch-load-") for name in names)
        callbacks = sum(name.startswith("secretwatch-callback-") for name in names)
        assert loads <= LOAD_WORKERS
        assert callbacks <= CALLBACK_WORKERS
        assert len(names) - loads - callbacks <= threads_before
    finally:
        for watcher in watchers:
            watcher.stop()


def test_stopped_watcher_stops_watching(volume: AtomicVolume) -> None:
    """stop() removes the watches and the watcher hears nothing more."""
    secrets = secretwatch.watch(volume.path, debounce=0)
    source = secrets._monitor._source
    assert isinstance(source, InotifySource)
    secrets.stop()
    assert source._watches == {}
    registered = [
        callback
        for watch in inotify()._watch_for_wd.values()
        for callback in watch.callbacks.values()
    ]
    assert not any(getattr(callback, "source", None) is source for callback in registered)
    volume.write({"password": "after stop"})
    assert secrets["password"] == "first"  # the last snapshot stays readable


def test_a_version_gone_before_its_watch_is_a_change_not_a_limit(
    volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOENT from inotify_add_watch (the version was deleted first) means look again;
    the watcher stays on inotify."""
    real_add = InotifyFD.add_callback
    refused: list[bytes] = []

    def add_callback(self: InotifyFD, path: bytes, *args: object) -> object:
        if os.path.basename(path).startswith(b"..") and not refused:
            refused.append(path)  # what the kernel says when the next rotation deleted it
            raise OSError(errno.ENOENT, "No such file or directory")
        return real_add(self, path, *args)  # type: ignore[arg-type]

    with secretwatch.watch(volume.path, debounce=0) as secrets:
        monkeypatch.setattr(InotifyFD, "add_callback", add_callback)
        recorder = Recorder(secrets)
        volume.write({"password": "second"})
        assert recorder.change().new["password"] == "second"
        assert refused
        assert secrets.mode == "inotify"
        volume.write({"password": "third"})  # and the next version is watched as usual
        assert recorder.change().new["password"] == "third"
        volume.write_in_place("password", "edited")
        recorder.change_where("password", "edited")


def test_file_created_in_a_new_directory_before_its_watch_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain directory's new subdirectory is re-read once watched: nothing slips between."""
    root = tmp_path / "plain"
    root.mkdir()
    (root / "a").write_text("1")
    real_arm = InotifySource.arm
    created: list[bool] = []

    def arm_late(self: InotifySource, plan: object) -> bool:
        if (root / "sub").is_dir() and not created:  # listed, not yet watched: write into it
            created.append(True)
            (root / "sub" / "late").write_text("late")
        return real_arm(self, plan)  # type: ignore[arg-type]

    with secretwatch.watch(root, debounce=0, resync_interval=None) as secrets:
        monkeypatch.setattr(InotifySource, "arm", arm_late)
        recorder = Recorder(secrets)
        (root / "sub").mkdir()
        (root / "sub" / "early").write_text("early")
        while "sub/late" not in secrets.snapshot:
            recorder.change()
        assert created
        assert secrets["sub/late"] == "late"


def test_callbacks_blocking_every_callback_worker_do_not_stop_loads(tmp_path: Path) -> None:
    """Loads have their own workers: blocked callbacks elsewhere delay no volume."""
    from secretwatch._watch.runtime import CALLBACK_WORKERS

    release = threading.Event()
    blocked = threading.Semaphore(0)

    def block(change: secretwatch.Change) -> None:
        blocked.release()
        release.wait(TIMEOUT)

    volumes = [AtomicVolume(tmp_path / f"v{n}") for n in range(CALLBACK_WORKERS + 1)]
    for vol in volumes:
        vol.write({"k": "1"})
    watchers = [secretwatch.watch(vol.path, debounce=0) for vol in volumes]
    try:
        for vol, watcher in zip(volumes[:-1], watchers[:-1], strict=True):
            watcher.subscribe(block)
            vol.write({"k": "2"})
        for _ in range(CALLBACK_WORKERS):
            assert blocked.acquire(timeout=TIMEOUT)  # every callback worker is now stuck
        volumes[-1].write({"k": "2"})
        snapshot = watchers[-1].wait_for_change(TIMEOUT, since=1)
        assert snapshot is not None
        assert snapshot["k"] == "2"
    finally:
        release.set()
        for watcher in watchers:
            watcher.stop()


def test_a_forked_child_watches_on_its_own(tmp_path: Path) -> None:
    """After fork() the child gets its own inotify instance and threads, and sees rotations."""
    script = """
import os, sys
import secretwatch
from secretwatch.testing import AtomicVolume

volume = AtomicVolume(sys.argv[1])
volume.write({"k": "1"})
secretwatch.watch(volume.path).stop()  # the parent has started its threads and inotify
pid = os.fork()
if pid == 0:
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        volume.write({"k": "2"})
        snapshot = secrets.wait_for_change(10, since=1)
        os._exit(0 if snapshot is not None and snapshot["k"] == "2" else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "v")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
