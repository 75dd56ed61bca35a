"""A throwaway PostgreSQL server for the database example's tests.

The server is Debian's ``postgresql`` package (``.ci/run`` installs it), started from a new
data directory in a temporary directory, listening only on a Unix socket there. Logins as
``admin`` are trusted (the test's own administration); every other role logs in with a
SCRAM password, as a real deployment would. As root, the server runs as the ``postgres``
user (or ``nobody``): PostgreSQL refuses to run as root.

With no server binary the tests are skipped, saying so; ``TEST_POSTGRES=required`` (set by
``.ci/run``) makes that a failure instead. (Not a ``SECRETWATCH_*`` variable: the sidecar
under test, which inherits the environment, refuses one it does not read.)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HBA = "local all admin trust\nlocal all all scram-sha-256\n"


def server_binaries() -> Path | None:
    """The directory of ``pg_ctl`` and ``initdb``: on PATH, else Debian's newest version."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    debian = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not debian:
        return None

    def major(path: str) -> int:
        found = re.search(r"/postgresql/(\d+)/", path)
        return int(found.group(1)) if found else 0

    return Path(max(debian, key=major)).parent


@dataclass(frozen=True)
class Postgres:
    """A running server: its socket directory, and how to reach it."""

    socket_dir: Path

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL with no credentials (they come from the secret)."""
        return f"postgresql+psycopg:///{database}?host={self.socket_dir}"

    def connect(self, user: str = "admin", password: str | None = None) -> Any:
        """A psycopg connection, autocommit (``admin`` needs no password)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            dbname="postgres",
            user=user,
            password=password,
            autocommit=True,
            connect_timeout=10,
        )

    def create_role(self, name: str, password: str) -> None:
        """A role that can log in with ``password``."""
        from psycopg import sql

        with self.connect() as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )

    def set_password(self, name: str, password: str) -> None:
        """``ALTER ROLE name PASSWORD password``: the rotation, on the database's side."""
        from psycopg import sql

        with self.connect() as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root for the server (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    pytest.fail("running as root, and neither a 'postgres' nor a 'nobody' user exists")


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a new server for the duration of the block, then stop it and delete its data."""
    pytest.importorskip("psycopg", reason="the examples extra is not installed")
    pytest.importorskip("sqlalchemy", reason="the examples extra is not installed")
    binaries = server_binaries()
    if binaries is None:
        reason = "no PostgreSQL server binary (pg_ctl, initdb): apt-get install postgresql"
        if os.environ.get("TEST_POSTGRES") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    as_user = _run_as()
    base = Path(tempfile.mkdtemp(prefix="secretwatch-pg-"))  # short: a socket path is <108
    data = base / "data"
    if as_user:
        os.chown(base, as_user["user"], as_user["group"])

    def run(*args: str, check: bool = True) -> None:
        done = subprocess.run(
            [str(binaries / args[0]), *args[1:]],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **as_user,
        )
        if check and done.returncode != 0:
            log = base / "server.log"
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{args[0]} failed:\n{done.stdout}{done.stderr}{server_log}")

    try:
        run("initdb", "--pgdata", str(data), "--username", "admin", "--no-sync", "--auth", "trust")
        (data / "pg_hba.conf").write_text(HBA)
        options = f"-c listen_addresses='' -k {base} -c fsync=off -c full_page_writes=off"
        try:
            run(
                "pg_ctl",
                "start",
                "--wait",
                "--pgdata",
                str(data),
                "--log",
                str(base / "server.log"),
                "--options",
                options,
            )
            yield Postgres(base)
        finally:  # also after a start that timed out: the server may be up nonetheless
            run("pg_ctl", "stop", "--wait", "--mode", "fast", "--pgdata", str(data), check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)
