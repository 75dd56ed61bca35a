"""A SQLAlchemy engine whose database credentials follow a mounted secret.

    SECRET_DIR=/etc/db-credentials DATABASE_URL=postgresql+psycopg://db.example.com/app \\
        python -m examples.database.engine

The secret holds ``username`` and ``password``. SQLAlchemy's ``do_connect`` event reads
them for every new connection from one validated version, so a connection never pairs a
user from one version with a password from another. Each pooled connection remembers the
credentials it logged in with; at checkout, one that logged in with older credentials is
closed and replaced. A connection in use when the secret rotates finishes its work
undisturbed. A version without a password is rejected, and the previous credentials stay
in force; a password that is well-formed but wrong can't be told apart, and fails at login.

Rotate between two roles that are members of one NOLOGIN role owning the objects: set the
idle role's password, write its username and password to the secret, and retire the other
role once ``pg_stat_activity`` shows none of its sessions (an idle pooled connection keeps
its session until its next checkout). No login fails at any point. With one role, change
the database first: PostgreSQL checks a password only at login, so until the kubelet
delivers the new one (up to a minute or two) the pool serves from its open connections,
but every new login fails, and a dropped connection makes SQLAlchemy discard the pool.

For an ``AsyncEngine``, register the same two listeners on ``async_engine.sync_engine``.
``creator=`` bypasses ``do_connect``: don't pass it.

Run as a program, it answers each line on stdin with the user and backend of a pooled
connection, and prints a line when the credentials rotate (never the password).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import sqlalchemy
import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import event, exc
from sqlalchemy.pool import ConnectionPoolEntry

import secretwatch


class Credentials(BaseSettings):
    """The database login, one file per field in the mounted secret."""

    username: str
    password: SecretStr

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (file_secret_settings,)  # the secret only: $USERNAME would otherwise win


def create_engine(
    url: str, credentials: secretwatch.LiveSettings[Credentials], **options: Any
) -> sqlalchemy.Engine:
    """``sqlalchemy.create_engine(url, **options)``, logging in with the latest credentials."""
    engine = sqlalchemy.create_engine(url, **options)

    @event.listens_for(engine, "do_connect")
    def log_in(
        dialect: Any, entry: ConnectionPoolEntry, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        login = credentials.current  # one version: the user and password always match
        entry.info.update(login=login, new=True)
        cparams["user"] = login.username
        cparams["password"] = login.password.get_secret_value()

    @event.listens_for(engine, "checkout")
    def replace_if_rotated(dbapi_connection: Any, entry: ConnectionPoolEntry, proxy: Any) -> None:
        # a connection that has only just logged in is kept even if the secret rotated since:
        # replacing it again could exhaust the pool's reconnection attempts in a burst
        if not entry.info.pop("new", False) and entry.info["login"] is not credentials.current:
            # the pool closes this connection and opens a new one, with do_connect above
            raise exc.DisconnectionError("the database credentials were rotated")

    return engine


def main() -> None:
    """Answer each line on stdin with ``user backend-pid``, from a pooled connection."""
    with secretwatch.watch_settings(Credentials, secrets_dir=os.environ["SECRET_DIR"]) as live:
        live.subscribe(lambda old, new: print(f"rotated: now {new.username}", flush=True))
        live.subscribe_errors(lambda error: print(f"rejected: {error}", flush=True))
        engine = create_engine(os.environ["DATABASE_URL"], live, pool_pre_ping=True)
        query = sqlalchemy.text("SELECT current_user, pg_backend_pid()")
        print("ready", flush=True)
        for _ in sys.stdin:
            with engine.connect() as connection:
                user, pid = connection.execute(query).one()
            print(f"{user} {pid}", flush=True)
        engine.dispose()


if __name__ == "__main__":
    # show secretwatch's events on stderr, through structlog, and keep stdout for ours
    # (with no structlog configuration they would go to logging's "secretwatch" logger)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    main()
