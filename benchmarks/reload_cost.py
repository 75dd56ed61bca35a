"""What loading a version costs against the volume's size, next to a bare lower bound.

secretwatch's load is what runs on every change: read every file consistently (resolve
``..data``, read, confirm nothing moved) and decode. The lower bound is ``os.scandir`` of
the version directory and the cheapest read of each file into a dict. Target: within 1.5x of the
lower bound at 1,000 keys. A last column adds one copy of each value to the bare read: a
snapshot's values are redacted ``str`` and ``bytes`` subclasses, which copy, and that copy is
what large values cost beyond the read.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from secretwatch._read.decoders import Decoders
from secretwatch._read.load import build_snapshot
from secretwatch._read.volume import read_volume
from secretwatch.testing import AtomicVolume

from ._targets import Target, row
from ._timing import side_by_side

MiB = 2**20

COLUMNS = [
    ("secretwatch load", lambda row: f"{row['seconds'] * 1e3:,.2f} ms"),
    ("bare read", lambda row: f"{row['bare_seconds'] * 1e3:,.2f} ms"),
    ("x bare read", lambda row: f"{row['x_bare']:.2f}x"),
    ("bare read + a copy", lambda row: f"{row['copied_seconds'] * 1e3:,.2f} ms"),
]


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """Within 1.5x of the bare read at 1,000 keys (a smoke run has no such row)."""
    if not any(measured["what"] == "1,000 keys" for measured in rows):
        return []
    x_bare = row(rows, "1,000 keys")["x_bare"]
    return [("1,000 keys: within 1.5x of the bare read", f"{x_bare:.2f}x", x_bare <= 1.5)]


def bare_read(directory: str) -> dict[str, bytes]:
    """The lower bound: list the directory, read each file with the fewest system calls
    (``os.open``, ``os.read`` until a short read, ``os.close``) and keep what was read (a
    reload that dropped it would have loaded nothing)."""
    files = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith(".."):
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    chunks = [os.read(fd, 65536)]
                    while len(chunks[-1]) == 65536:
                        chunks.append(os.read(fd, 65536))
                finally:
                    os.close(fd)
                files[entry.name] = b"".join(chunks)
    return files


class _Copy(bytes):
    """A ``bytes`` subclass, as ``RedactedBytes`` is: making one copies the buffer once."""

    __slots__ = ()


def bare_read_and_copy(directory: str) -> dict[str, bytes]:
    """The bare read, plus one copy of each value: what a snapshot's own redacted values
    (``RedactedStr``, ``RedactedBytes``: subclasses, so copies) add on top of reading."""
    return {key: _Copy(data) for key, data in bare_read(directory).items()}


def secretwatch_load(path: str, decoders: Decoders) -> None:
    """A watcher's load of one version: a consistent read, then decoding."""
    version = read_volume(path, max_bytes=MiB)
    build_snapshot(version.files, version=1, path=path, decoders=decoders, validate=None)


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the reload-cost table."""
    scale = 100 if smoke else 1  # smoke: a hundredth of the calls
    text, raw = Decoders(None), Decoders({"*": "bytes"})
    files = 4 if smoke else 16
    blobs = {f"blob-{i}": "x" * (MiB // files) for i in range(files)}
    cases = [
        (f"{n:,} keys", {f"key-{i:05d}": f"value-{i}" for i in range(n)}, text, calls)
        for n, calls in ((10, 2_000), (100, 200), (1_000, 20), (10_000, 2))
        if not (smoke and n > 100)
    ]
    cases += [
        (f"1 MiB in {files} keys (text)", blobs, text, 100),
        ("1 MiB, bytes decoder", blobs, raw, 100),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch:
        for n, (name, payload, decoders, calls) in enumerate(cases):
            volume = AtomicVolume(Path(scratch) / f"volume-{n}")
            volume.write(payload)
            path, data_dir = str(volume.path), os.path.realpath(volume.path / "..data")
            timed = side_by_side(
                {
                    "bare": lambda d=data_dir: bare_read(d),  # type: ignore[misc]
                    "copied": lambda d=data_dir: bare_read_and_copy(d),  # type: ignore[misc]
                    "ours": lambda p=path, d=decoders: secretwatch_load(p, d),  # type: ignore[misc]
                },
                number=max(1, calls // scale),
                rounds=11,
            )
            row = {"benchmark": "reload cost", "what": name, "seconds": timed.best("ours")}
            row.update(bare_seconds=timed.best("bare"), copied_seconds=timed.best("copied"))
            rows.append({**row, "x_bare": timed.ratio("ours", "bare")})
    return rows
