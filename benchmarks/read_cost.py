"""What reading a secret costs, per access, against what users would do instead.

Peers: a plain dict lookup (the floor), reading the file on every access (the naive way
to "monitor the mounted file"), and building the pydantic-settings model on every access.
Targets: ``secrets["key"]`` and ``live.current.field`` within 3x of the dict lookup, and at
least 100x faster than reading the file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

import secretwatch
from secretwatch.testing import AtomicVolume

from ._timing import per_call


class Database(BaseSettings):
    """A typical settings model: the secret's keys as fields."""

    db_user: str
    db_password: SecretStr
    db_port: int = 5432


def build(directory: Path, number: int) -> float:
    """Seconds to build the model from the mounted files, as a naive reader would."""
    return per_call(lambda: Database(_secrets_dir=directory), number=number)  # type: ignore[call-arg]


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the read-cost table."""
    number = 1_000 if smoke else 200_000
    slow = 20 if smoke else 2_000  # the peers that touch the disk
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch:
        volume = AtomicVolume(Path(scratch) / "db")
        volume.write({"db_user": "app", "db_password": "s3cret", "db_port": "5432"})
        plain = {"db_password": "s3cret"}
        with (
            secretwatch.watch(volume.path) as secrets,
            secretwatch.watch_settings(Database, secrets_dir=volume.path) as live,
        ):
            floor = per_call(lambda: plain["db_password"], number=number)
            rows = [
                ("dict lookup (the floor)", floor),
                ('secrets["db_password"]', per_call(lambda: secrets["db_password"], number=number)),
                (
                    "live.current.db_password",
                    per_call(lambda: live.current.db_password, number=number),
                ),
                (
                    "read the file every time",
                    per_call((volume.path / "db_password").read_bytes, number=slow),
                ),
                ("build the pydantic-settings model every time", build(volume.path, slow)),
            ]
    return [
        {"benchmark": "read cost", "what": what, "seconds": seconds, "x_floor": seconds / floor}
        for what, seconds in rows
    ]
