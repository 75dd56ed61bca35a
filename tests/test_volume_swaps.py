"""A directory of a volume swapped with a link out of it while the volume is read: the
outside file's bytes are never read, by a single read or by a running watcher."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import secretwatch
from secretwatch import ReadError, SymlinkEscapeError
from secretwatch._read.volume import read_volume
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, Recorder

CANARY = "CANARY-outside-5d09"  # the outside file's content: never in a version
INSIDE = "inside"
READS = 1_000  # reads of the volume while the writer swaps
VERSION_READS = 300  # of a kubelet version swapped: a read that finds a link backs off, reads again
RELOADS = 200  # reloads of a running watcher while the writer swaps (events bring more)
PACE = 0.0001  # seconds between two swaps: about a read's time, the attacker's best odds
SWAPPED_KEYS = 8  # files in the swapped directory: a wider window for the swap to hit
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2

Exchange = Callable[[Path, Path], None]


@pytest.fixture(scope="module")
def exchange() -> Exchange:
    """``renameat2(..., RENAME_EXCHANGE)``: swaps two names atomically, as an attacker would;
    skips where the C library or the file system can't."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        pytest.skip("no renameat2 in this C library")
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]

    def swap(a: Path, b: Path) -> None:
        if renameat2(_AT_FDCWD, bytes(a), _AT_FDCWD, bytes(b), _RENAME_EXCHANGE):
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(a))

    return swap


_WRITER = """
import ctypes, os, sys, time
renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
a, b, pace = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), float(sys.argv[3])
print("swapping", flush=True)
while renameat2(-100, a, -100, b, 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
    time.sleep(pace)
sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
"""


@contextlib.contextmanager
def swapping(exchange: Exchange, inside: Path, elsewhere: Path) -> Iterator[None]:
    """Swap the directory ``inside`` with a link to a directory in ``elsewhere`` (outside the
    volume), every ``PACE`` seconds, from another process, until the block ends. The link waits in
    ``elsewhere`` too, so the volume holds either the directory or the link; the directory
    is put back at the end."""
    outside = elsewhere / "outside"
    outside.mkdir(parents=True)
    for file in inside.rglob("*"):  # the same names, with the canary for content
        if file.is_dir():
            (outside / file.relative_to(inside)).mkdir(parents=True)
        else:
            (outside / file.relative_to(inside)).write_text(CANARY)
    link = elsewhere / "link"
    link.symlink_to(outside)
    try:
        exchange(inside, link)
        exchange(inside, link)
    except OSError as exc:
        pytest.skip(f"no RENAME_EXCHANGE here: {exc.strerror}")
    command = [sys.executable, "-c", _WRITER, str(inside), str(link), str(PACE)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as writer:
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline() == b"swapping\n"
            yield
        finally:
            writer.terminate()
            writer.wait(TIMEOUT)
            if inside.is_symlink():
                exchange(inside, link)
        assert writer.returncode == -signal.SIGTERM  # it was swapping to the end


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


Layout = tuple[Path, Path, Callable[[], None]]
"""A volume, its directory to swap, and how to add the key ``done``: ``yes`` to it."""


def plain_directory(tmp_path: Path) -> Layout:
    """A plain directory with a subdirectory, which is swapped."""
    root = tmp_path / "plain"
    (root / "sub").mkdir(parents=True)
    (root / "top").write_text(INSIDE)
    for n in range(SWAPPED_KEYS):
        (root / "sub" / f"key-{n}").write_text(INSIDE)

    def done() -> None:
        (root / "done").write_text("yes")

    return root, root / "sub", done


def directory_with_a_link(tmp_path: Path) -> Layout:
    """A plain directory with a link to a file in its subdirectory, which is swapped."""
    root, inside, done = plain_directory(tmp_path)
    (root / "link").symlink_to("sub/key-0")
    return root, inside, done


def kubelet_volume(tmp_path: Path, swapped: str) -> Layout:
    """A kubelet volume whose version directory (or the directory ``swapped`` in it) is
    swapped."""
    vol = AtomicVolume(tmp_path / "v")
    payload = {"top": INSIDE} | {f"sub/key-{n}": INSIDE for n in range(SWAPPED_KEYS)}
    vol.write(payload)
    assert vol.current is not None

    def done() -> None:
        vol.write({**payload, "done": "yes"})

    return vol.path, vol.current / swapped if swapped else vol.current, done


def kubelet_version(tmp_path: Path) -> Layout:
    return kubelet_volume(tmp_path, "")


def kubelet_nested(tmp_path: Path) -> Layout:
    return kubelet_volume(tmp_path, "sub")


LAYOUTS: dict[str, Callable[[Path], Layout]] = {
    "directory": plain_directory,
    "link in a directory": directory_with_a_link,
    "kubelet version": kubelet_version,
    "kubelet nested": kubelet_nested,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_directory_swapped_with_a_link_out_is_never_read_through(
    tmp_path: Path, exchange: Exchange, layout: str
) -> None:
    """While a directory of the volume (a plain subdirectory, the kubelet's version directory,
    a directory nested in it) is swapped with a link out of the volume, every read returns
    inside bytes only or fails as a change or an escape, and leaves no descriptor open."""
    root, inside, _ = LAYOUTS[layout](tmp_path)
    descriptors = open_descriptors()
    reads = VERSION_READS if layout == "kubelet version" else READS
    leaks = good = 0
    unexpected = []
    with swapping(exchange, inside, tmp_path / "elsewhere"):
        for _ in range(reads):
            try:
                files = read_volume(str(root), max_bytes=4096).files
            except ReadError as exc:
                if not (exc.transient or isinstance(exc, SymlinkEscapeError)):
                    unexpected.append(str(exc))
                continue
            if CANARY.encode() in files.values():
                leaks += 1
            else:  # a plain directory has no commit point: a key may be missed meanwhile
                assert set(files.values()) == {INSIDE.encode()}
                good += 1
    assert leaks == 0, f"{leaks} of {reads} reads returned the outside file's bytes"
    assert unexpected == []  # a change is transient, a link seen out is an escape
    assert good > 0
    assert open_descriptors() == descriptors


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_watcher_never_applies_bytes_from_a_link_swapped_in(
    tmp_path: Path, exchange: Exchange, layout: str
) -> None:
    """A running watcher that follows a volume while one of its directories is swapped with a
    link out of it never applies a version holding the outside file's bytes."""
    root, inside, done = LAYOUTS[layout](tmp_path)
    with secretwatch.watch(root, debounce=0) as secrets:
        recorder = Recorder(secrets)
        with swapping(exchange, inside, tmp_path / "elsewhere"):
            in_force = [secrets.reload() for _ in range(RELOADS)]
        done()  # the last change, in the volume's own directory: every other one came before
        applied = []
        while (change := recorder.change()).new.get("done") != "yes":
            applied.append(change.new)
        applied.append(change.new)
    applied += in_force
    leaked = [snapshot for snapshot in applied if CANARY in dict(snapshot).values()]
    assert leaked == [], f"{len(leaked)} of {len(applied)} applied versions hold the outside bytes"
