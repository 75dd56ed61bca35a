"""Reading one consistent version of a volume, whatever its layout and whoever writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import secretwatch._read.listing as listing_module
import secretwatch._read.volume as volume_module
from secretwatch import ReadError, SymlinkEscapeError, TooLargeError, VolumeNotFoundError
from secretwatch._read.volume import Layout, is_subpath_mount, list_volume, read_volume
from secretwatch.testing import AtomicVolume

from .conftest import bind_mount
from .test_permissions import unprivileged

MiB = 1024 * 1024


def read(path: Path, max_bytes: int = MiB) -> dict[str, bytes]:
    return read_volume(str(path), max_bytes=max_bytes).files


def test_kubelet_keys_come_from_the_resolved_data_dir(tmp_path: Path) -> None:
    """Keys are the regular files under the resolved ..data, nested paths included."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1", "nested/dir/key": "2", ".dockerconfigjson": "3"})
    version = read_volume(str(vol.path), max_bytes=MiB)
    assert version.listing.layout is Layout.KUBELET
    assert version.listing.revision == os.readlink(vol.path / "..data")
    assert version.files == {"a": b"1", "nested/dir/key": b"2", ".dockerconfigjson": b"3"}


def test_names_starting_with_two_dots_are_never_keys(tmp_path: Path) -> None:
    """The writer's own names (..data, ..<timestamp>, ..data_tmp) never become keys."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    current = vol.current
    assert current is not None
    (vol.path / "..data_tmp_leftover").write_text("x")
    (current / "..hidden").write_text("x")
    (current / "..hidden-dir").mkdir()
    (current / "..hidden-dir" / "k").write_text("x")
    assert read(vol.path) == {"a": b"1"}


def test_keys_added_and_removed_are_seen_before_the_visible_links(tmp_path: Path) -> None:
    """Enumeration uses ..data, not the visible links that lag the swap."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1", "b": "2"})
    (vol.path / "b").unlink()  # a visible link gone stale: keys still come from ..data
    assert read(vol.path) == {"a": b"1", "b": b"2"}


def test_plain_directory(tmp_path: Path) -> None:
    """A directory without ..data (docker secrets, Vault Agent) is read as is, nested too."""
    root = tmp_path / "plain"
    (root / "sub").mkdir(parents=True)
    (root / "token").write_bytes(b"t")
    (root / "sub" / "cert.pem").write_bytes(b"c")
    version = read_volume(str(root), max_bytes=MiB)
    assert version.listing.layout is Layout.DIRECTORY
    assert version.files == {"token": b"t", "sub/cert.pem": b"c"}


def test_single_file(tmp_path: Path) -> None:
    """A single file is a volume of one key, named after the file."""
    file = tmp_path / "api-key"
    file.write_bytes(b"k")
    version = read_volume(str(file), max_bytes=MiB)
    assert version.listing.layout is Layout.FILE
    assert version.files == {"api-key": b"k"}


def test_single_key_file_of_a_kubelet_volume_watches_the_volume(tmp_path: Path) -> None:
    """A key's visible link is read through ..data, and the volume directory is watched."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    listing = list_volume(str(vol.path / "a"))
    watched = dict(listing.watch)
    assert watched[str(vol.path)] == frozenset({"a", "..data"})
    assert read(vol.path / "a") == {"a": b"1"}


def test_missing_volume(tmp_path: Path) -> None:
    """A missing path is VolumeNotFoundError, naming the path."""
    with pytest.raises(VolumeNotFoundError, match="does not exist") as info:
        read(tmp_path / "nope")
    assert info.value.path == str(tmp_path / "nope")


def test_version_being_deleted_is_never_returned_in_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed mid-rotation (old version half deleted), the read is confirmed stale and redone."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"tls.crt": "crt-1", "tls.key": "key-1", "ca.crt": "ca-1"})
    real_walk = listing_module.walk
    rotated = []

    def walk_mid_rotation(  # type: ignore[no-untyped-def]
        path: str, root: int, real_root: str, top: str, **options: bool
    ):
        if not rotated:  # the kubelet's steps 5-9 for version 2, and step 12 under way
            rotated.append(True)
            new = vol.path / "..2026_11_28_21_34_22.2"
            new.mkdir()
            for key in ("tls.crt", "tls.key", "ca.crt"):
                (new / key).write_text(f"{key}-2")
            os.symlink(new.name, vol.path / "..data_tmp")
            os.rename(vol.path / "..data_tmp", vol.path / "..data")
            (Path(real_root) / top / "tls.key").unlink()  # rmtree of version 1 has begun
        return real_walk(path, root, real_root, top, **options)

    monkeypatch.setattr(listing_module, "walk", walk_mid_rotation)
    assert read(vol.path) == {key: f"{key}-2".encode() for key in ("tls.crt", "tls.key", "ca.crt")}
    assert rotated


def test_old_version_deleted_under_the_reader_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOENT from a version deleted after the listing makes the read start over."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1", "b": "1"})
    real_list = volume_module.list_open
    calls = []

    def list_then_rotate(path: str, root: int, **options: bool):  # type: ignore[no-untyped-def]
        listing = real_list(path, root, **options)
        if not calls:  # the listing names version 1; version 2 replaces it before any read
            vol.write({"a": "2", "b": "2"})
        calls.append(listing.revision)
        return listing

    monkeypatch.setattr(volume_module, "list_open", list_then_rotate)
    assert read(vol.path) == {"a": b"2", "b": b"2"}
    assert len(calls) == 2


def test_in_place_write_during_read_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file rewritten in place while the volume is read makes it be read again."""
    root = tmp_path / "plain"
    root.mkdir()
    (root / "token").write_bytes(b"old-old-old")
    real_read_files = volume_module._read_files
    writes = []

    def read_while_writer_rewrites(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_read_files(*args, **kwargs)
        if not writes:  # a writer that truncates and writes, just after the first read
            writes.append(True)
            with open(root / "token", "wb") as f:
                f.write(b"new-new-new-new")
        return result

    monkeypatch.setattr(volume_module, "_read_files", read_while_writer_rewrites)
    assert read(root) == {"token": b"new-new-new-new"}
    assert writes


def test_file_replaced_by_rename_during_read_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ..data, a file renamed over (Vault Agent) after it was read forces a re-read."""
    vol = AtomicVolume(tmp_path / "plain")
    vol.path.mkdir()
    vol.replace("cert", "cert-1")
    vol.replace("key", "key-1")
    real_read_files = volume_module._read_files
    seen = []

    def read_then_replace(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_read_files(*args, **kwargs)
        if not seen:  # "cert" renamed over after both were read
            seen.append(True)
            vol.replace("cert", "cert-2")
        return result

    monkeypatch.setattr(volume_module, "_read_files", read_then_replace)
    assert read(vol.path) == {"cert": b"cert-2", "key": b"key-1"}


@pytest.mark.parametrize("layout", ["kubelet", "directory"])
def test_a_file_made_a_link_after_the_listing_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    """A listed file replaced by a link out of the volume before it is opened is not read
    through the link: the volume is listed again, and the link is refused."""
    outside = tmp_path / "outside"
    outside.write_text("not yours")
    vol = AtomicVolume(tmp_path / "v")
    if layout == "kubelet":
        vol.write({"token": "t"})
        target = vol.current / "token"  # type: ignore[operator]
    else:
        vol.path.mkdir()
        vol.replace("token", "t")
        target = vol.path / "token"
    real_list = volume_module.list_open

    def list_then_swap(path: str, root: int, **options: bool):  # type: ignore[no-untyped-def]
        listing = real_list(path, root, **options)
        if not target.is_symlink():  # after the first listing only
            target.unlink()
            target.symlink_to(outside)
        return listing

    monkeypatch.setattr(volume_module, "list_open", list_then_swap)
    with pytest.raises(SymlinkEscapeError) as info:
        read(vol.path)
    assert info.value.key == "token"


def test_a_large_max_bytes_reads_files_over_64_kib(tmp_path: Path) -> None:
    """max_bytes is a limit, not a buffer size: a terabyte limit reads a 70 kB file."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"blob": "x" * 70_000})
    assert read(vol.path, max_bytes=10**12)["blob"] == b"x" * 70_000


def test_too_large_file_is_rejected(tmp_path: Path) -> None:
    """A file over max_bytes raises TooLargeError naming path and key, never the value."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"big": "x" * 100, "small": "y"})
    with pytest.raises(TooLargeError) as info:
        read(vol.path, max_bytes=99)
    assert info.value.key == "big"
    assert "xxx" not in str(info.value)
    assert read(vol.path, max_bytes=100)["big"] == b"x" * 100


def test_link_out_of_the_volume_is_rejected(tmp_path: Path) -> None:
    """A key that is a link to a file outside the volume raises SymlinkEscapeError."""
    outside = tmp_path / "outside"
    outside.write_text("not yours")
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    os.symlink(outside, vol.current / "escape")  # type: ignore[operator]
    with pytest.raises(SymlinkEscapeError) as info:
        read(vol.path)
    assert info.value.key == "escape"


def test_data_link_out_of_the_volume_is_rejected(tmp_path: Path) -> None:
    """A ..data that points outside the volume is never followed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a").write_text("x")
    vol = tmp_path / "v"
    vol.mkdir()
    os.symlink(elsewhere, vol / "..data")
    with pytest.raises(SymlinkEscapeError, match=r"\.\.data points outside"):
        read(vol)


def test_link_inside_the_volume_is_followed(tmp_path: Path) -> None:
    """A key that links to another file of the volume reads that file."""
    root = tmp_path / "plain"
    root.mkdir()
    (root / "v2.pem").write_text("pem")
    os.symlink("v2.pem", root / "current.pem")
    assert read(root) == {"current.pem": b"pem", "v2.pem": b"pem"}


def test_link_to_the_volume_root_is_not_a_key(tmp_path: Path) -> None:
    """Links to directories are not followed, the volume's own root included."""
    root = tmp_path / "plain"
    root.mkdir()
    (root / "a").write_text("1")
    os.symlink(root, root / "self")
    assert read(root) == {"a": b"1"}


def test_dangling_data_link_is_a_clear_error(tmp_path: Path) -> None:
    """..data pointing to a missing directory is reported, not retried forever."""
    vol = tmp_path / "v"
    vol.mkdir()
    os.symlink("..2026_01_01_00_00_00.123", vol / "..data")
    with pytest.raises(ReadError, match="does not exist") as info:
        read(vol)
    assert not info.value.transient


def test_first_write_in_progress_is_transient(tmp_path: Path) -> None:
    """A version directory without ..data yet is a write under way, not an empty volume."""
    vol = tmp_path / "v"
    (vol / "..2026_11_28_21_34_21.1234").mkdir(parents=True)
    with pytest.raises(ReadError, match="being written") as info:
        read(vol)
    assert info.value.transient


def test_fifo_is_not_a_key(tmp_path: Path) -> None:
    """Special files are skipped: a FIFO would block a reader forever."""
    root = tmp_path / "plain"
    root.mkdir()
    os.mkfifo(root / "pipe")
    (root / "a").write_text("1")
    assert read(root) == {"a": b"1"}


def test_empty_file_and_binary_content(tmp_path: Path) -> None:
    """Bytes come back exactly, empty files included."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"empty": b"", "bin": bytes(range(256))})
    assert read(vol.path) == {"empty": b"", "bin": bytes(range(256))}


def test_subpath_mount_is_detected(tmp_path: Path) -> None:
    """A file bind-mounted over another (what subPath does) is recognised."""
    source = tmp_path / "source"
    source.write_text("s")
    target = tmp_path / "target"
    target.write_text("t")
    assert not is_subpath_mount(str(target))
    with bind_mount(source, target):
        assert is_subpath_mount(str(target))


def test_kubelet_key_is_not_a_subpath_mount(tmp_path: Path) -> None:
    """A key link beside ..data is an ordinary, rotating mount."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"a": "1"})
    assert not is_subpath_mount(str(vol.path / "a"))


SEARCH_ONLY = """
import json, os, sys
from secretwatch._read.volume import read_volume
from secretwatch.testing import AtomicVolume

volume = AtomicVolume(sys.argv[1])
volume.write({"a": "1", "nested/b": "2"})
os.chmod(volume.path, 0o311)  # its names can be opened, but it can't be listed
files = read_volume(sys.argv[1], max_bytes=100).files
print(json.dumps({key: data.decode() for key, data in files.items()}))
"""


def test_a_kubelet_volume_that_can_be_searched_but_not_listed_is_read(tmp_path: Path) -> None:
    """The volume's directory is opened only to open names in: a kubelet volume is read with
    search permission on it alone, as a path walk would."""
    tmp_path.chmod(0o755)
    command = [*unprivileged(), sys.executable, "-c", SEARCH_ONLY, str(tmp_path / "secret")]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"a": "1", "nested/b": "2"}


def test_a_data_link_through_a_link_of_the_volume_is_read(tmp_path: Path) -> None:
    """``..data`` naming its version through another link of the volume (a layout made by
    hand: ``..data -> current -> ..v1``) is read, as it always was; one that leads out
    through such a link is an escape."""
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "token").write_text("value")
    (tmp_path / "current").symlink_to("..v1")
    (tmp_path / "..data").symlink_to("current")
    version = read_volume(str(tmp_path), max_bytes=100)
    assert (version.listing.revision, version.files) == ("current", {"token": b"value"})
    (tmp_path / "..data").unlink()
    (tmp_path / "out").symlink_to(tmp_path.parent)
    (tmp_path / "..data").symlink_to("out")
    with pytest.raises(SymlinkEscapeError):
        read_volume(str(tmp_path), max_bytes=100)


def odd_names(directory: Path) -> None:
    """Files and a directory below ``directory`` whose names are not printable UTF-8."""
    raw = os.fsencode(directory)
    Path(os.fsdecode(raw + b"/bad-\xff-name")).write_text("unread")
    (directory / "line\nbreak").write_text("unread")
    (directory / "bell\x07").write_text("unread")
    (directory / "nested").mkdir(exist_ok=True)
    (directory / "nested" / "tab\tname").write_text("unread")
    inside = Path(os.fsdecode(raw + b"/dir-\xfe"))
    inside.mkdir()
    (inside / "inner").write_text("unread")


@pytest.mark.parametrize("layout", ["directory", "kubelet"])
def test_names_that_are_not_printable_utf8_fail_a_read_or_are_listed_apart(
    tmp_path: Path, layout: str
) -> None:
    """A name that is not printable UTF-8 fails the read, as a watcher needs; with
    ``skip_bad_names`` (for ``show``) the other keys are read and the bad names listed apart,
    unread, a directory whole, as keys would be named."""
    if layout == "kubelet":
        vol = AtomicVolume(tmp_path / "v")
        vol.write({"token": "good", "nested/ok": "also good", "café": "printable"})
        assert vol.current is not None
        path, files_at = vol.path, vol.current
    else:
        path = files_at = tmp_path / "v"
        (path / "nested").mkdir(parents=True)
        (path / "token").write_text("good")
        (path / "nested" / "ok").write_text("also good")
        (path / "café").write_text("printable")
    odd_names(files_at)
    with pytest.raises(ReadError, match="not printable UTF-8"):
        read_volume(str(path), max_bytes=MiB)
    version = read_volume(str(path), max_bytes=MiB, skip_bad_names=True)
    assert version.files == {"token": b"good", "nested/ok": b"also good", "café": b"printable"}
    assert version.listing.bad_names == tuple(
        sorted(["bad-\udcff-name", "line\nbreak", "bell\x07", "nested/tab\tname", "dir-\udcfe/"])
    )
    assert list_volume(str(path), skip_bad_names=True) == version.listing
