"""secretwatch.integrations.sqlalchemy against a real PostgreSQL server: after ALTER ROLE
and a kubelet write, new connections log in with the rotated password and pooled connections
that logged in with the previous one are replaced; user and password always come from one
version; a version without a password is rejected while the pool keeps working; an
AsyncEngine (psycopg's async mode) follows rotations under concurrent queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

import secretwatch
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT
from .postgres import Postgres, running_postgres

CANARY = "canary-pw-7f3e9b"  # passwords that must never be logged or shown
WRONG_CANARY = "canary-wrong-pw-4c1d"


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


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def make_engine(postgres: Postgres) -> Iterator[Callable[..., Any]]:
    """``make_engine(live, **options)``: an engine following ``live``, disposed after the test."""
    import sqlalchemy

    from secretwatch.integrations.sqlalchemy import follow_credentials

    engines: list[Any] = []

    def make(
        live: secretwatch.LiveSettings[Any] | secretwatch.SecretWatcher, **options: Any
    ) -> Any:
        engines.append(sqlalchemy.create_engine(postgres.url(), **options))
        follow_credentials(engines[-1], live)
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def backend(connection: Any) -> tuple[str, int]:
    """The connection's database user and server process id."""
    import sqlalchemy

    user, pid = connection.execute(sqlalchemy.text("SELECT current_user, pg_backend_pid()")).one()
    return str(user), int(pid)


def test_new_connections_use_the_rotated_password_and_old_ones_are_replaced(
    *,
    tmp_path: Path,
    postgres: Postgres,
    make_engine: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import psycopg
    import sqlalchemy

    postgres.create_role("app", "password-1")
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app", "password": "password-1"})
    caplog.set_level(logging.DEBUG)  # SQLAlchemy's pool and psycopg's own logs included
    with (
        secretwatch.watch_settings(Credentials, secrets_dir=volume.path) as live,
        contextlib.ExitStack() as cleanup,
    ):
        engine = make_engine(live, pool_size=2, echo_pool="debug")
        busy = cleanup.enter_context(engine.connect())  # checked out across the rotation
        busy.begin()
        _, busy_pid = backend(busy)
        with engine.connect() as idle:  # back in the pool across the rotation
            _, idle_pid = backend(idle)
            idle_dbapi = idle.connection.dbapi_connection

        postgres.set_password("app", CANARY)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            postgres.connect("app", "password-1").close()
        with engine.connect() as connection:  # the secret is not rotated yet: the pool serves
            assert backend(connection) == ("app", idle_pid)

        seen = live.version
        volume.write({"username": "app", "password": CANARY})
        assert live.wait_for_change(TIMEOUT, since=seen) is not None

        with engine.connect() as connection:  # logged in anew, with the rotated password
            user, pid = backend(connection)
        assert (user, idle_dbapi.closed) == ("app", True)
        assert pid not in {idle_pid, busy_pid}

        assert backend(busy) == ("app", busy_pid)  # the busy one finishes undisturbed
        busy_dbapi = busy.connection.dbapi_connection
        busy.commit()
        busy.close()
        with engine.connect() as first, engine.connect() as second:
            pids = {backend(first)[1], backend(second)[1]}
        assert busy_dbapi.closed
        assert pids.isdisjoint({idle_pid, busy_pid})
        assert engine.pool.checkedout() == 0

        seen = live.version  # a wrong password: the login fails, and never shows it
        volume.write({"username": "app", "password": WRONG_CANARY})
        assert live.wait_for_change(TIMEOUT, since=seen) is not None
        with pytest.raises(sqlalchemy.exc.OperationalError) as failed:
            engine.connect()
        report = "".join(traceback.format_exception(failed.value))
        assert "password authentication failed" in report

    assert "Created new connection" in caplog.text  # the pool's own log was captured
    for canary in (CANARY, WRONG_CANARY):
        assert canary not in caplog.text
        assert canary not in report
        assert canary not in "".join(capsys.readouterr())


def test_user_and_password_always_come_from_one_version(
    tmp_path: Path, postgres: Postgres, make_engine: Callable[..., Any]
) -> None:
    """Two roles, rotated between: a user paired with the other role's password would fail."""
    logins = {"app_blue": "blue-password", "app_green": "green-password"}
    for role, password in logins.items():
        postgres.create_role(role, password)
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_blue", "password": logins["app_blue"]})
    seen_users: queue.SimpleQueue[str | BaseException] = queue.SimpleQueue()
    stop = threading.Event()
    options: secretwatch.WatchOptions = {"debounce": 0}

    with secretwatch.watch_settings(
        Credentials, secrets_dir=volume.path, watch_options=options
    ) as live:
        engine = make_engine(live, pool_size=1, max_overflow=0)

        def query_continuously() -> None:
            while not stop.is_set():
                try:
                    with engine.connect() as connection:
                        seen_users.put(backend(connection)[0])
                except BaseException as error:  # collected: the test fails on it
                    seen_users.put(error)
                    return

        def wait_for_user(role: str) -> None:
            while (user := seen_users.get(timeout=TIMEOUT)) != role:
                assert isinstance(user, str), f"a checkout failed: {user!r}"

        worker = threading.Thread(target=query_continuously)
        worker.start()
        try:
            for rotation in range(20):
                role = "app_green" if rotation % 2 == 0 else "app_blue"
                seen = live.version
                volume.write({"username": role, "password": logins[role]})
                assert live.wait_for_change(TIMEOUT, since=seen) is not None
                wait_for_user(role)
        finally:
            stop.set()
            worker.join(TIMEOUT)
    while not seen_users.empty():
        assert isinstance(seen_users.get(), str)


def test_a_rotation_during_a_login_does_not_fail_the_checkout(
    tmp_path: Path, postgres: Postgres, make_engine: Callable[..., Any]
) -> None:
    """A connection replaced at checkout logs in; the secret rotates again meanwhile: the
    checkout still succeeds (replacing it once more could exhaust the pool's attempts),
    and the next checkout replaces it."""
    import sqlalchemy

    logins = {"app_first": "first-password", "app_second": "second-password"}
    for role, password in logins.items():
        postgres.create_role(role, password)
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_first", "password": logins["app_first"]})

    def rotate(live: secretwatch.LiveSettings[Any], role: str) -> None:
        seen = live.version
        volume.write({"username": role, "password": logins[role]})
        assert live.wait_for_change(TIMEOUT, since=seen) is not None

    with secretwatch.watch_settings(Credentials, secrets_dir=volume.path) as live:
        engine = make_engine(live, pool_size=1, max_overflow=0)
        with engine.connect() as connection:
            assert backend(connection)[0] == "app_first"
        rotate(live, "app_second")
        rotations_in_login = []

        @sqlalchemy.event.listens_for(engine, "connect")
        def rotate_back_once(dbapi_connection: Any, entry: Any) -> None:
            if not rotations_in_login:
                rotations_in_login.append(True)
                rotate(live, "app_first")

        with engine.connect() as connection:
            assert backend(connection)[0] == "app_second"
        assert rotations_in_login
        with engine.connect() as connection:
            assert backend(connection)[0] == "app_first"


def test_a_version_without_a_password_is_rejected_and_the_pool_keeps_working(
    tmp_path: Path, postgres: Postgres, make_engine: Callable[..., Any]
) -> None:
    postgres.create_role("app_kept", "kept-password")
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_kept", "password": "kept-password"})
    rejected: queue.SimpleQueue[secretwatch.SecretWatchError] = queue.SimpleQueue()
    with secretwatch.watch_settings(Credentials, secrets_dir=volume.path) as live:
        live.subscribe_errors(rejected.put)
        engine = make_engine(live)
        with engine.connect() as connection:
            _, pid = backend(connection)

        volume.write({"username": "app_other"})  # half-edited: no password
        error = rejected.get(timeout=TIMEOUT)
        assert "password" in str(error)
        with engine.connect() as connection:  # the same connection: nothing rotated
            assert backend(connection) == ("app_kept", pid)
        engine.dispose()
        with engine.connect() as connection:  # and a new one logs in as before
            assert backend(connection)[0] == "app_kept"


async def test_an_async_engine_follows_rotations_under_concurrent_queries(
    tmp_path: Path, postgres: Postgres, caplog: pytest.LogCaptureFixture
) -> None:
    """An AsyncEngine (psycopg's async mode) rotated between two roles while several
    queries run at once: every query succeeds, each rotation reaches new logins, and the
    passwords appear in no log, error or repr."""
    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    from secretwatch.integrations.sqlalchemy import follow_credentials

    logins = {"app_async_blue": f"{CANARY}-blue", "app_async_green": f"{CANARY}-green"}
    for role, password in logins.items():
        postgres.create_role(role, password)
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_async_blue", "password": logins["app_async_blue"]})
    caplog.set_level(logging.DEBUG)
    options: secretwatch.WatchOptions = {"debounce": 0}
    users: asyncio.Queue[str] = asyncio.Queue()
    failures: list[BaseException] = []
    stop = asyncio.Event()
    query = sqlalchemy.text("SELECT current_user")

    async def query_continuously(engine: Any) -> None:
        while not stop.is_set():
            try:
                async with engine.connect() as connection:
                    users.put_nowait(str((await connection.execute(query)).scalar_one()))
            except Exception as error:  # collected: the test fails on it
                failures.append(error)
                return

    async def wait_for_user(role: str) -> None:
        while await users.get() != role:
            assert not failures, failures

    with secretwatch.watch_settings(
        Credentials, secrets_dir=volume.path, watch_options=options
    ) as live:
        engine = create_async_engine(postgres.url(), pool_size=3, max_overflow=0, echo_pool="debug")
        following = follow_credentials(engine, live)
        assert following.engine is engine.sync_engine
        workers = [asyncio.create_task(query_continuously(engine)) for _ in range(5)]
        try:
            await asyncio.wait_for(wait_for_user("app_async_blue"), TIMEOUT)
            for rotation in range(6):
                role = "app_async_green" if rotation % 2 == 0 else "app_async_blue"
                seen = live.version
                volume.write({"username": role, "password": logins[role]})
                assert await asyncio.to_thread(live.wait_for_change, TIMEOUT, since=seen)
                await asyncio.wait_for(wait_for_user(role), TIMEOUT)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), TIMEOUT)
            shown = [repr(engine), repr(engine.pool), repr(following), repr(live)]
            await engine.dispose()
    assert not failures, failures
    assert "Created new connection" in caplog.text  # the pool's own log was captured
    assert CANARY not in caplog.text
    assert not any(CANARY in text for text in shown)


def test_a_secret_watcher_is_followed_by_key_and_a_missing_key_is_named(
    tmp_path: Path, postgres: Postgres, make_engine: Callable[..., Any]
) -> None:
    """With a SecretWatcher, logins read its keys and follow its rotations; a version
    lacking the password fails the login with an error naming the key, never a value."""
    import sqlalchemy

    postgres.create_role("app_watched", CANARY)
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_watched", "password": "not-yet-set"})
    with secretwatch.watch(volume.path, debounce=0) as watcher:
        engine = make_engine(watcher, pool_size=1, max_overflow=0)
        with pytest.raises(sqlalchemy.exc.OperationalError, match="authentication failed"):
            engine.connect()

        seen = watcher.snapshot.version
        volume.write({"username": "app_watched", "password": CANARY})
        assert watcher.wait_for_change(TIMEOUT, since=seen) is not None
        with engine.connect() as connection:
            assert backend(connection)[0] == "app_watched"

        seen = watcher.snapshot.version
        volume.write({"username": "app_watched"})  # a watcher does not validate
        assert watcher.wait_for_change(TIMEOUT, since=seen) is not None
        with pytest.raises(secretwatch.SecretWatchError) as failed:
            engine.connect()
    assert failed.value.key == "password"
    assert failed.value.path == watcher.path
    assert "'password'" in str(failed.value)
    assert CANARY not in "".join(traceback.format_exception(failed.value))


def test_remove_stops_following(tmp_path: Path, postgres: Postgres) -> None:
    """After ``remove()`` a rotation no longer replaces a pooled connection; a model without
    the named field is refused at once."""
    import sqlalchemy

    from secretwatch.integrations.sqlalchemy import follow_credentials

    logins = {"app_removed": "removed-password", "app_other": "other-password"}
    for role, password in logins.items():
        postgres.create_role(role, password)
    volume = AtomicVolume(tmp_path / "db-credentials")
    volume.write({"username": "app_removed", "password": logins["app_removed"]})
    with secretwatch.watch_settings(Credentials, secrets_dir=volume.path) as live:
        with pytest.raises(TypeError, match="no field 'user'"):
            follow_credentials(sqlalchemy.create_engine(postgres.url()), live, username="user")
        engine = sqlalchemy.create_engine(postgres.url(), pool_size=1, max_overflow=0)
        try:
            with follow_credentials(engine, live) as following, engine.connect() as connection:
                _, pid = backend(connection)
            assert not following.installed
            following.remove()  # idempotent

            seen = live.version
            volume.write({"username": "app_other", "password": logins["app_other"]})
            assert live.wait_for_change(TIMEOUT, since=seen) is not None
            with engine.connect() as connection:  # kept: nothing follows the secret now
                assert backend(connection) == ("app_removed", pid)
        finally:
            engine.dispose()
