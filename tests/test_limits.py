"""Limits and hostile input: each works or gives a clear error, and the watcher goes on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import secretwatch
from secretwatch import DecodeError
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, Recorder


def rotate(
    secrets: secretwatch.SecretWatcher, volume: AtomicVolume, payload: dict[str, str]
) -> None:
    """Write ``payload`` and wait until it is in force: the watcher is still watching."""
    seen = secrets.snapshot.version
    volume.write(payload)
    assert secrets.wait_for_change(TIMEOUT, since=seen) is not None
    assert {key: secrets[key] for key in payload} == payload


def test_the_longest_names_the_kubelet_allows(tmp_path: Path) -> None:
    """255-byte path elements, nested as deep as a 4096-byte path allows."""
    volume = AtomicVolume(tmp_path / "v")
    element = "k" * 255
    room = 4095 - len(str(volume.path)) - len("/..2026_11_29_00_00_00.0000000000/")
    nested = "/".join(["d" * 255] * (room // 256))
    assert len(str(volume.path / nested)) < 4096
    volume.write({element: "long name", nested: "deep"})
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        assert secrets[element] == "long name"
        assert secrets[nested] == "deep"
        rotate(secrets, volume, {element: "long name 2", nested: "deep 2"})


def test_bytes_that_are_not_utf8_under_the_text_decoder(tmp_path: Path) -> None:
    volume = AtomicVolume(tmp_path / "v")
    volume.write({"token": "good"})
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write({"token": b"\xff\xfe not text"})
        error = recorder.error()
        assert isinstance(error, DecodeError)
        assert error.key == "token"
        assert "'token'" in str(error)
        assert "UTF-8" in str(error)
        assert "not text" not in str(error)
        assert secrets["token"] == "good"
        rotate(secrets, volume, {"token": "good again"})


def test_ten_thousand_keys(tmp_path: Path) -> None:
    volume = AtomicVolume(tmp_path / "v")
    payload = {f"key-{n:05d}": f"value-{n}" for n in range(10_000)}
    volume.write(payload)
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        assert len(secrets.snapshot) == 10_000
        assert secrets["key-09999"] == "value-9999"
        payload["key-04242"] = "changed"
        rotate(secrets, volume, payload)


def test_a_one_mebibyte_volume(tmp_path: Path) -> None:
    """One file of exactly the default limit (1 MiB) is accepted; a byte more is not."""
    volume = AtomicVolume(tmp_path / "v")
    volume.write({"bundle": "a" * 2**20})
    with secretwatch.watch(volume.path, debounce=0, decoders={"*": "bytes"}) as secrets:
        recorder = Recorder(secrets)
        assert len(secrets["bundle"]) == 2**20
        volume.write({"bundle": "b" * (2**20 + 1)})
        assert isinstance(recorder.error(), secretwatch.TooLargeError)
        assert secrets["bundle"][:1] == b"a"
        seen = secrets.snapshot.version
        volume.write({"bundle": "c" * 2**20})
        assert secrets.wait_for_change(TIMEOUT, since=seen) is not None
        assert secrets["bundle"][:1] == b"c"


@pytest.mark.parametrize("loop", ["link to itself", "directory loop"])
def test_a_symlink_loop(tmp_path: Path, loop: str) -> None:
    """A link that never resolves to a file is not a key (as a FIFO is not); a directory
    link back up is not followed round. Reading returns, and the watcher goes on."""
    volume = AtomicVolume(tmp_path / "v")
    volume.write({"token": "good"})
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        current = volume.current
        assert current is not None
        if loop == "link to itself":
            os.symlink("looped", current / "..tmp")
            os.rename(current / "..tmp", current / "looped")
        else:
            (current / "dir").mkdir()
            (current / "dir" / "file").write_text("inside")
            os.symlink("..", current / "dir" / "up")  # dir/up/dir/up/...
        snapshot = secrets.reload()  # returns: no loop is followed round
        assert snapshot["token"] == "good"
        assert set(snapshot) <= {"token", "dir/file"}
        rotate(secrets, volume, {"token": "after"})


def test_a_single_watched_file_whose_name_is_not_printable(tmp_path: Path) -> None:
    """A single file's name is its key, held to the keys' rule: watching it fails at start,
    naming it escaped (no raw newline in the message)."""
    raw = os.fsencode(tmp_path) + b"/single\nfile\xff"
    Path(os.fsdecode(raw)).write_text("x")
    with pytest.raises(secretwatch.ReadError) as caught:
        secretwatch.watch(os.fsdecode(raw))
    assert "single\\nfile\\xff is not printable UTF-8" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Not a name the kubelet writes: the version is rejected, saying which name."""
    volume = AtomicVolume(tmp_path / "v")
    volume.write({"token": "good"})
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        recorder = Recorder(secrets)
        current = volume.current
        assert current is not None
        (Path(os.fsdecode(bytes(current) + b"/bad-\xff-name"))).write_text("x")
        error = recorder.error()
        assert isinstance(error, secretwatch.ReadError)
        assert "not printable UTF-8" in str(error)
        assert "'bad-\\xff-name'" in str(error)  # escaped as secretwatch show shows it
        assert secrets["token"] == "good"
        os.unlink(bytes(current) + b"/bad-\xff-name")
        rotate(secrets, volume, {"token": "after"})
