"""A SQLAlchemy engine whose database credentials follow a mounted secret.

    SECRET_DIR=/etc/db-credentials DATABASE_URL=postgresql+psycopg://db.example.com/app \\
        python -m examples.database.engine

The secret holds ``username`` and ``password``; ``follow_credentials`` makes every new
login read both from one validated version and replaces, at checkout, a pooled connection
that logged in with older ones (see secretwatch.integrations.sqlalchemy). A version without
a password is rejected, and the previous credentials stay in force.

Rotate between two roles that are members of one NOLOGIN role owning the objects: set the
idle role's password, write its username and password to the secret, and retire the other
role once ``pg_stat_activity`` shows none of its sessions (an idle pooled connection keeps
its session until its next checkout). No login fails at any point. With one role, change
the database first: PostgreSQL checks a password only at login, so until the kubelet
delivers the new one (up to a minute or two) the pool serves from its open connections,
but every new login fails, and a dropped connection makes SQLAlchemy discard the pool.

Run as a program, it answers each line on stdin with the user and backend of a pooled
connection, and prints a line when the credentials rotate (never the password).
"""

from __future__ import annotations

import os
import sys

import sqlalchemy
import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

import secretwatch
from secretwatch.integrations.sqlalchemy import follow_credentials


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


def main() -> None:
    """Answer each line on stdin with ``user backend-pid``, from a pooled connection."""
    with secretwatch.watch_settings(Credentials, secrets_dir=os.environ["SECRET_DIR"]) as live:
        live.subscribe(lambda old, new: print(f"rotated: now {new.username}", flush=True))
        live.subscribe_errors(lambda error: print(f"rejected: {error}", flush=True))
        engine = sqlalchemy.create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
        follow_credentials(engine, live)
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
