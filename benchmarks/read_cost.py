"""What reading a secret costs, per access, against what users would do instead.

Peers: a plain dict lookup (the floor), reading the file on every access (the naive way
to "monitor the mounted file": ``Path.read_text()``, as the values compared are text; and
``read_bytes()``, which skips decoding), and building the pydantic-settings model on every
access. Targets: ``secrets["key"]`` and ``live.current.field`` within 3x of the dict
lookup, and at least 100x faster than reading the file. Each is timed as a statement, as
you would write it, and the time of ``timeit``'s own loop (an empty statement) is taken off.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

import secretwatch
from secretwatch.testing import AtomicVolume

from ._targets import Target, row
from ._timing import side_by_side

COLUMNS = [
    ("per read", lambda row: f"{row['seconds'] * 1e9:,.0f} ns"),
    ("x a dict lookup", lambda row: f"{row['x_floor']:,.1f}x"),
    ("against read_text()", lambda row: _against_file(row["x_faster_than_file"])),
]

LOOP = "timeit's loop, with an empty statement"


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """Within 3x of a dict lookup, and at least 100x faster than reading the file."""
    found: list[Target] = []
    for what in ('secrets["db_password"]', "live.current.db_password"):
        measured = row(rows, what)
        x_dict, x_file = measured["x_floor"], measured["x_faster_than_file"]
        found.append((f"{what}: within 3x of a dict lookup", f"{x_dict:.1f}x", x_dict <= 3))
        found.append((f"{what}: 100x faster than the file", f"{x_file:.0f}x", x_file >= 100))
    return found


def _against_file(ratio: float) -> str:
    if ratio == 1:  # the file read itself
        return ""
    if ratio < 1:
        return f"{1 / ratio:,.1f}x slower"
    return f"{ratio:,.0f}x faster" if ratio >= 10 else f"{ratio:.1f}x faster"


class Database(BaseSettings):
    """A typical settings model: the secret's keys as fields."""

    db_user: str
    db_password: SecretStr
    db_port: int = 5432


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the read-cost table."""
    number = 1_000 if smoke else 1_000_000
    slow = 20 if smoke else 500
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch:
        volume = AtomicVolume(Path(scratch) / "db")
        volume.write({"db_user": "app", "db_password": "s3cret", "db_port": "5432"})
        plain = {"db_password": "s3cret"}
        file = volume.path / "db_password"
        with (
            secretwatch.watch(volume.path) as secrets,
            secretwatch.watch_settings(Database, secrets_dir=volume.path) as live,
        ):
            namespace = {
                "plain": plain,
                "secrets": secrets,
                "live": live,
                "model": live.current,
                "file": file,
                "Database": Database,
                "directory": volume.path,
            }
            timings = side_by_side(
                {  # statements, as you would write them: no function call around them
                    LOOP: "pass",
                    "dict lookup (the floor)": 'plain["db_password"]',
                    'secrets["db_password"]': 'secrets["db_password"]',
                    "live.current.db_password": "live.current.db_password",
                    "live.current (the instance)": "live.current",
                    "model.db_password (an instance you hold)": "model.db_password",
                    # the peers that touch the disk, run fewer times
                    "read the file every time: read_text()": ("file.read_text()", slow),
                    "read the file every time: read_bytes(), undecoded": (
                        "file.read_bytes()",
                        slow,
                    ),
                    "build the pydantic-settings model every time": (
                        "Database(_secrets_dir=directory)",
                        slow,
                    ),
                },
                number=number,
                rounds=15,
                namespace=namespace,
            )
    net = timings.minus(LOOP)  # timeit's own loop, taken off every figure
    floor, file_read = "dict lookup (the floor)", "read the file every time: read_text()"
    return [
        {
            "benchmark": "read cost",
            "what": what,
            "seconds": net.best(what),
            "x_floor": net.ratio(what, floor),
            "x_faster_than_file": net.ratio(file_read, what),
        }
        for what in net.rounds
    ]
