"""A SQLAlchemy engine whose logins follow rotated database credentials.

    >>> from secretwatch.integrations.sqlalchemy import follow_credentials
    >>> engine = sqlalchemy.create_engine("postgresql+psycopg://db/app")  # doctest: +SKIP
    >>> following = follow_credentials(engine, live)  # doctest: +SKIP

Every new connection logs in with the user and password of one version of the secret (the
``do_connect`` event), so a user from one version is never paired with a password from
another. Each pooled connection remembers the version it logged in with; at checkout, one
that logged in with an older version is closed and replaced by a new login. A connection in
use when the secret rotates finishes its work undisturbed. A connection that has only just
logged in is kept at that checkout even if the secret rotated meanwhile (replacing it again
could exhaust the pool's reconnection attempts in a burst); its next checkout replaces it.

The source is a :class:`~secretwatch.LiveSettings` (``username`` and ``password`` name
fields of its model, ``str`` or ``SecretStr``) or a :class:`~secretwatch.SecretWatcher`
(they name keys of the volume, decoded as text). A LiveSettings validates: a version
without a password is rejected and the previous credentials stay in force. A watcher does
not: a version without one of the keys fails the logins that read it, naming the key.

This module needs SQLAlchemy 2 (the ``sqlalchemy`` extra); an ``AsyncEngine`` also needs
greenlet (``sqlalchemy[asyncio]``), as SQLAlchemy's asyncio support always does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

from pydantic import SecretBytes, SecretStr
from sqlalchemy import event, exc

from secretwatch._errors import SecretWatchError
from secretwatch._settings.live import LiveSettings
from secretwatch._watch.watcher import SecretWatcher

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["FollowedCredentials", "follow_credentials"]

LOGIN: Final = "secretwatch.login"
"""The key, in a pooled connection's ``info``, of the version it logged in with."""

JUST_LOGGED_IN: Final = "secretwatch.just_logged_in"
"""The key, in a pooled connection's ``info``, set by its login until its first checkout."""


class FollowedCredentials:
    """The listeners :func:`follow_credentials` installed on an engine; :meth:`remove` them.

    Also a context manager, which removes them on exit.
    """

    def __init__(
        self, engine: Engine, source: LiveSettings[Any] | SecretWatcher, keys: tuple[str, str]
    ):
        self._engine = engine
        self._source = source
        self._keys = keys
        self._lock = threading.Lock()
        self._installed = False

    @property
    def engine(self) -> Engine:
        """The (synchronous) engine the listeners are on: ``sync_engine`` of an AsyncEngine."""
        return self._engine

    @property
    def installed(self) -> bool:
        """Whether the listeners are in place (until :meth:`remove`)."""
        return self._installed

    def _install(self) -> None:
        event.listen(self._engine, "do_connect", self._log_in)
        event.listen(self._engine, "checkout", self._replace_if_rotated)
        self._installed = True

    def remove(self) -> None:
        """Remove the listeners: new logins use the engine's URL again; idempotent.

        Pooled connections stay as they are; :meth:`Engine.dispose` closes them.
        """
        with self._lock:
            if self._installed:
                event.remove(self._engine, "do_connect", self._log_in)
                event.remove(self._engine, "checkout", self._replace_if_rotated)
                self._installed = False

    def __enter__(self) -> FollowedCredentials:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        username, password = self._keys
        return (
            f"FollowedCredentials(engine={self._engine!r}, source={self._source!r}, "
            f"username={username!r}, password={password!r}, installed={self._installed})"
        )

    # -- the listeners -----------------------------------------------------------------

    def _version(self) -> object:
        """The version in force: a new object for each applied change."""
        if isinstance(self._source, LiveSettings):
            return self._source.current
        return self._source.snapshot

    def _log_in(
        self, dialect: Any, entry: ConnectionPoolEntry, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        login = self._version()  # one version: the user and the password always match
        username, password = self._keys
        cparams["user"] = self._text(login, username)
        cparams["password"] = self._text(login, password)
        entry.info[LOGIN] = login
        entry.info[JUST_LOGGED_IN] = True

    def _replace_if_rotated(
        self, dbapi_connection: Any, entry: ConnectionPoolEntry, proxy: Any
    ) -> None:
        if entry.info.pop(JUST_LOGGED_IN, False):
            return
        if entry.info.get(LOGIN) is not self._version():
            # the pool closes this connection and opens a new one, through _log_in
            raise exc.DisconnectionError("the database credentials were rotated")

    def _text(self, login: object, name: str) -> str:
        """The text of field or key ``name`` of ``login``; an error names it, never a value."""
        if isinstance(self._source, LiveSettings):
            value = getattr(login, name)
            where = f"field {name!r} of {self._source.model.__name__}"
            path = self._source.secrets_dirs[-1]
        else:
            path = self._source.path
            where = f"key {name!r} of {path}"
            if name not in login:  # type: ignore[operator]  # a Snapshot
                raise SecretWatchError(
                    f"no {where}: can't log in to the database", path=path, key=name
                )
            value = login[name]  # type: ignore[index]
        if isinstance(value, SecretStr | SecretBytes):
            value = value.get_secret_value()
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                raise SecretWatchError(f"{where} is not UTF-8 text", path=path, key=name) from None
        if not isinstance(value, str):
            kind = type(value).__name__
            raise SecretWatchError(f"{where} is a {kind}, not text", path=path, key=name)
        return value


def follow_credentials(
    engine: Engine | AsyncEngine,
    live: LiveSettings[Any] | SecretWatcher,
    *,
    username: str = "username",
    password: str = "password",  # noqa: S107  # the name of a field, not a password
) -> FollowedCredentials:
    """Log the engine's new connections in with the latest credentials of ``live``.

    Args:
        engine: a ``sqlalchemy.Engine``, or an ``AsyncEngine`` (its ``sync_engine`` is the
            one followed). Don't create it with ``creator=``: that bypasses ``do_connect``.
        live: a started :class:`~secretwatch.LiveSettings` (``username`` and ``password``
            are field names of its model) or :class:`~secretwatch.SecretWatcher` (they
            are keys of the volume).
        username: the field or key of the database user.
        password: the field or key of the password.

    Returns:
        The installed listeners: ``remove()`` them to stop following.

    Raises:
        TypeError: ``live`` is neither, or ``username``/``password`` is not a field of the
            model.
    """
    # an AsyncEngine's, without importing sqlalchemy.ext.asyncio (it needs greenlet)
    sync_engine: Engine = getattr(engine, "sync_engine", engine)  # type: ignore[arg-type]
    if isinstance(live, LiveSettings):
        fields = live.model.model_fields
        for name in (username, password):
            if name not in fields:
                raise TypeError(f"{live.model.__name__} has no field {name!r}")
    elif not isinstance(live, SecretWatcher):
        raise TypeError(
            f"live must be a LiveSettings or a SecretWatcher, not {type(live).__name__}"
        )
    following = FollowedCredentials(sync_engine, live, (username, password))
    following._install()
    return following
