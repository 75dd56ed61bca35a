"""examples/database/engine.py, run as a program against a real PostgreSQL server, follows
a rotation (the integration it uses is tested in test_integrations_sqlalchemy.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT
from .postgres import Postgres, running_postgres

ROOT = Path(__file__).parent.parent
CANARY = "canary-pw-7f3e9b"  # passwords that must never be logged or shown
WRONG_CANARY = "canary-wrong-pw-4c1d"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


def test_the_example_program_follows_a_rotation(tmp_path: Path, postgres: Postgres) -> None:
    postgres.create_role("app_program", "program-password-1")
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_program", "password": "program-password-1"})
    env = {**os.environ, "SECRET_DIR": str(volume.path), "DATABASE_URL": postgres.url()}
    with subprocess.Popen(
        [sys.executable, "-m", "examples.database.engine"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as program:
        stdin, stdout = program.stdin, program.stdout
        assert stdin is not None
        assert stdout is not None

        def ask() -> tuple[str, int]:
            stdin.write("\n")
            stdin.flush()
            user, pid = stdout.readline().split()
            return user, int(pid)

        try:
            assert stdout.readline() == "ready\n"
            user, first_pid = ask()
            assert user == "app_program"
            postgres.set_password("app_program", CANARY)
            volume.write({"username": "app_program", "password": CANARY})
            assert stdout.readline() == "rotated: now app_program\n"
            user, pid = ask()
            assert user == "app_program"
            assert pid != first_pid  # the connection that logged in before was replaced
        finally:
            try:
                _, stderr = program.communicate(timeout=TIMEOUT)  # closes stdin: it ends
            except subprocess.TimeoutExpired:
                program.kill()
                raise
    assert program.returncode == 0, stderr
    assert CANARY not in stderr
