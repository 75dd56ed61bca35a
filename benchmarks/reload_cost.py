"""What loading a version costs against the volume's size, next to a bare lower bound.

secretwatch's load is what runs on every change: read every file consistently (resolve
``..data``, read, confirm nothing moved) and decode. The lower bound is ``os.scandir`` of
the version directory and a plain read of each file. Target: within 1.5x of the lower bound
at 1,000 keys.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from secretwatch._decoders import Decoders
from secretwatch._load import build_snapshot
from secretwatch._volume import read_volume
from secretwatch.testing import AtomicVolume

from ._timing import per_call

MiB = 2**20


def bare_read(directory: str) -> None:
    """The lower bound: list the directory, read each file."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith(".."):
                with open(entry.path, "rb") as file:
                    file.read()


def secretwatch_load(path: str, decoders: Decoders) -> None:
    """A watcher's load of one version: a consistent read, then decoding."""
    version = read_volume(path, max_bytes=MiB)
    build_snapshot(version.files, version=1, path=path, decoders=decoders, validate=None)


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the reload-cost table."""
    sizes = (10, 100) if smoke else (10, 100, 1_000, 10_000)
    volumes = {f"{n} keys": {f"key-{i:05d}": f"value-{i}" for i in range(n)} for n in sizes}
    files = 4 if smoke else 16
    volumes["1 MiB"] = {f"blob-{i}": "x" * (MiB // files) for i in range(files)}
    decoders = Decoders(None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch:
        for name, payload in volumes.items():
            volume = AtomicVolume(Path(scratch) / name.replace(" ", "-"))
            volume.write(payload)
            path, data_dir = str(volume.path), os.path.realpath(volume.path / "..data")
            number = max(1, (20 if smoke else 2_000) // max(1, len(payload) // 10))
            bare = per_call(lambda d=data_dir: bare_read(d), number=number)  # type: ignore[misc]
            ours = per_call(lambda p=path: secretwatch_load(p, decoders), number=number)  # type: ignore[misc]
            row = {"benchmark": "reload cost", "what": name, "seconds": ours}
            rows.append({**row, "bare_seconds": bare, "x_bare": ours / bare})
    return rows
