"""Hundreds of rotations against concurrent readers: every snapshot is one whole version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import secretwatch
from secretwatch._read.volume import read_volume
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

KEYS = ("tls.crt", "tls.key", "ca.crt", "nested/token", "username")
ROTATIONS = 300


def payload(n: int) -> dict[str, str]:
    return {key: f"{key}@{n}" for key in KEYS}


def version_of(values: dict[str, object]) -> int:
    """The rotation a snapshot is from; fails if its keys come from different rotations."""
    stamps = {str(value).rsplit("@", 1)[1] for value in values.values()}
    assert len(stamps) == 1, f"torn snapshot: {sorted(stamps)}"
    assert set(values) == set(KEYS)
    return int(stamps.pop())


def test_rotation_storm_never_yields_a_torn_snapshot(tmp_path: Path) -> None:
    """One writer rotates 300 times while the volume is read: no snapshot mixes versions."""
    vol = AtomicVolume(tmp_path / "tls")
    vol.write(payload(0))
    stop = threading.Event()
    failures: list[BaseException] = []
    published: list[int] = []
    raw_reads = [0]

    def guarded(check: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                check()
            except BaseException as exc:
                failures.append(exc)

        return run

    with secretwatch.watch(vol.path, debounce=0) as secrets:

        @guarded
        def raw_reader() -> None:  # hammers the reader while the kubelet swaps under it
            while not stop.is_set():
                try:
                    files = read_volume(str(vol.path), max_bytes=4096).files
                except secretwatch.ReadError as exc:
                    if not exc.transient:
                        raise
                    continue
                version_of({key: data.decode() for key, data in files.items()})
                raw_reads[0] += 1

        @guarded
        def snapshot_reader() -> None:  # takes every snapshot a reader could be handed
            seen = secrets.snapshot.version
            while not stop.is_set():
                snapshot = secrets.wait_for_change(TIMEOUT, since=seen)
                if snapshot is None:
                    continue
                assert snapshot.version > seen, "versions went backwards"
                published.append(version_of(dict(snapshot)))
                seen = snapshot.version

        def on_change(change: secretwatch.Change) -> None:
            guarded(lambda: version_of(dict(change.new)))()

        secrets.subscribe(on_change)
        readers = [threading.Thread(target=raw_reader), threading.Thread(target=snapshot_reader)]
        for reader in readers:
            reader.start()
        try:
            for n in range(1, ROTATIONS + 1):
                vol.write(payload(n))
            while version_of(dict(secrets.snapshot)) != ROTATIONS:
                if secrets.wait_for_change(TIMEOUT, since=secrets.snapshot.version) is None:
                    break
            assert version_of(dict(secrets.snapshot)) == ROTATIONS  # converged on the last one
            assert secrets.mode == "inotify"  # vanished versions never forced polling
        finally:
            stop.set()
            secrets.stop()  # releases the snapshot reader's wait
            for reader in readers:
                reader.join(TIMEOUT)
    assert failures == []
    assert raw_reads[0] > 0
    assert published == sorted(published)
    assert len(published) > 1
