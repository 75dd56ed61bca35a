"""httpx authentication read from a followed secret at each request (the ``httpx`` extra).

:class:`BearerAuth` and :class:`BasicAuth` are ``httpx.Auth`` objects for ``httpx.Client``
and ``httpx.AsyncClient`` alike. Each request is sent with the credential in force when it
starts: the current snapshot of a :class:`~secretwatch.SecretWatcher` (``keys`` are the
volume's keys) or the current instance of a :class:`~secretwatch.LiveSettings` (``keys``
are field names; ``SecretStr`` and ``SecretBytes`` are unwrapped).

A server may start refusing the old credential before the kubelet delivers the new one
(the secret was rotated, the volume follows up to a minute later). On a ``401`` the auth
waits up to ``refresh_timeout`` seconds for a version whose credential differs from the
one just refused, and sends the request again, once, with it. If none comes, the ``401``
is the response; a second ``401`` is too: there is never a third attempt. The request's
body is read into memory first (``requires_request_body``), so that it can be sent again.
The async flow waits on the event loop without blocking it and without a thread (a
subscription to the source wakes it), so many refused requests at once cost no threads,
and a cancelled request stops waiting at once.

Examples:
    >>> import httpx, secretwatch  # doctest: +SKIP
    >>> from secretwatch.integrations.http import BearerAuth  # doctest: +SKIP
    >>> secrets = secretwatch.watch("/etc/api-token")  # doctest: +SKIP
    >>> client = httpx.Client(auth=BearerAuth(secrets, "token"))  # doctest: +SKIP

Values never appear in a repr, a log event or an error: those name the keys only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import time
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx

from secretwatch._log import log as _log
from secretwatch._watch.watcher import SecretWatcher

if TYPE_CHECKING:
    from secretwatch._settings.live import LiveSettings

__all__ = ["DEFAULT_REFRESH_TIMEOUT", "BasicAuth", "BearerAuth"]

DEFAULT_REFRESH_TIMEOUT = 5.0
"""Seconds a request refused with ``401`` waits for a newer credential before giving up."""

_UNAUTHORIZED = 401

Values = tuple[str | bytes, ...]


class _Reader:
    """Reads named values of a watcher or live settings as one consistent version."""

    def __init__(self, source: SecretWatcher | LiveSettings[Any], keys: tuple[str, ...]):
        self._source = source
        self._keys = keys
        if isinstance(source, SecretWatcher):
            self.where = source.path
            return
        from secretwatch._settings.live import LiveSettings  # noqa: PLC0415  # loads pydantic

        if not isinstance(source, LiveSettings):
            raise TypeError(f"source must be a SecretWatcher or a LiveSettings, not {source!r}")
        self.where = source.model.__name__
        for key in keys:
            if key not in source.model.model_fields:
                raise ValueError(f"{self.where} has no field {key!r}")

    def read(self) -> tuple[int, Values]:
        """The current version and the values of the keys in it."""
        source = self._source
        if isinstance(source, SecretWatcher):
            snapshot = source.snapshot
            missing = [key for key in self._keys if key not in snapshot]
            if missing:
                raise KeyError(
                    f"{self.where}: version {snapshot.version} has no key {missing[0]!r}"
                )
            return snapshot.version, tuple(self._plain(key, snapshot[key]) for key in self._keys)
        version = source.version  # read first: the instance may be newer, never older
        current = source.current
        return version, tuple(self._plain(key, getattr(current, key)) for key in self._keys)

    def newer(self, since: int, used: Values, timeout: float) -> tuple[int, Values] | None:
        """Wait up to ``timeout`` seconds for a version after ``since`` whose values differ
        from ``used``; ``None`` when none came (or the source stopped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            if self._source.wait_for_change(left, since=since) is None:
                return None
            version, values = self.read()
            if values != used:
                return version, values
            since = version  # a change of other keys: keep waiting for ours
            if left == 0.0:
                return None

    async def newer_async(
        self, since: int, used: Values, timeout: float
    ) -> tuple[int, Values] | None:
        """As :meth:`newer`, on the event loop: woken by a subscription, no thread waits."""
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()

        def wake(*_: object) -> None:  # on a secretwatch worker thread, after each change
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(arrived.set)

        subscription = self._source.subscribe(wake)
        deadline = loop.time() + timeout
        try:
            while True:
                arrived.clear()  # before reading: a change after the read wakes the wait
                version, values = self.read()
                if version > since and values != used:
                    return version, values
                left = deadline - loop.time()
                if left <= 0 or not self._source.running:  # stopped: nothing will come
                    return None
                try:
                    await asyncio.wait_for(arrived.wait(), left)
                except TimeoutError:
                    return None
        finally:
            subscription.cancel()

    def _plain(self, key: str, value: object) -> str | bytes:
        unwrap = getattr(value, "get_secret_value", None)  # pydantic's SecretStr, SecretBytes
        if callable(unwrap):
            value = unwrap()
        if isinstance(value, str | bytes):
            return value
        raise TypeError(f"{self.where}: {key!r} is a {type(value).__name__}, not text or bytes")


class _FollowingAuth(httpx.Auth):
    """Sets a header from the current credential; on a 401, waits for a newer one and
    sends the request once more with it."""

    requires_request_body = True  # a retry sends the body again

    def __init__(
        self,
        source: SecretWatcher | LiveSettings[Any],
        keys: tuple[str, ...],
        refresh_timeout: float,
    ):
        if not (
            isinstance(refresh_timeout, int | float)
            and math.isfinite(refresh_timeout)
            and refresh_timeout >= 0
        ):
            raise ValueError(f"refresh_timeout must be seconds >= 0, not {refresh_timeout!r}")
        self._reader = _Reader(source, keys)
        self.refresh_timeout = float(refresh_timeout)

    def _header(self, values: Values) -> str:
        raise NotImplementedError

    def _first(self, request: httpx.Request) -> tuple[int, Values]:
        version, values = self._reader.read()
        request.headers["Authorization"] = self._header(values)
        return version, values

    def _retry(self, request: httpx.Request, found: tuple[int, Values] | None) -> bool:
        if found is None:
            _log.warning(
                "secretwatch.http_auth_refused",
                auth=repr(self),
                url=_endpoint(request.url),
                waited=self.refresh_timeout,
            )
            return False
        _log.info(
            "secretwatch.http_auth_retry",
            auth=repr(self),
            url=_endpoint(request.url),
            version=found[0],
        )
        request.headers["Authorization"] = self._header(found[1])
        return True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Send ``request`` with the current credential; on a 401, once more with a newer one."""
        request.read()
        version, values = self._first(request)
        response = yield request
        if response.status_code != _UNAUTHORIZED:
            return
        if self._retry(request, self._reader.newer(version, values, self.refresh_timeout)):
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """As :meth:`sync_auth_flow`, waiting for a newer credential without blocking the loop."""
        await request.aread()
        version, values = self._first(request)
        response = yield request
        if response.status_code != _UNAUTHORIZED:
            return
        found = await self._reader.newer_async(version, values, self.refresh_timeout)
        if self._retry(request, found):
            yield request


class BearerAuth(_FollowingAuth):
    """``Authorization: Bearer <token>`` with the token of ``key`` in force at each request.

    Args:
        source: a :class:`~secretwatch.SecretWatcher` (``key`` is a volume key) or a
            :class:`~secretwatch.LiveSettings` (``key`` is a field name).
        key: where the token is.
        refresh_timeout: seconds to wait for a newer token after a ``401``
            (:data:`DEFAULT_REFRESH_TIMEOUT`); ``0`` retries only if one is already there.

    Whitespace around the token (the newline of a file written with ``echo``) is dropped;
    a token that is empty, not ASCII, or has whitespace or control characters inside is
    refused (``ValueError``): it could not be sent in a header.
    """

    def __init__(
        self,
        source: SecretWatcher | LiveSettings[Any],
        key: str,
        *,
        refresh_timeout: float = DEFAULT_REFRESH_TIMEOUT,
    ):
        super().__init__(source, (key,), refresh_timeout)
        self.key = key

    def _header(self, values: Values) -> str:
        (value,) = values
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        token = text.strip()
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise ValueError(
                f"{self._reader.where}: the token of {self.key!r} is empty, not ASCII, or has "
                "whitespace or control characters inside"
            )
        return f"Bearer {token}"

    def __repr__(self) -> str:
        return f"BearerAuth(key={self.key!r}, refresh_timeout={self.refresh_timeout})"


class BasicAuth(_FollowingAuth):
    """``Authorization: Basic ...`` with the user name and password in force at each request,
    both from one version of the source.

    Args:
        source: a :class:`~secretwatch.SecretWatcher` (keys are volume keys) or a
            :class:`~secretwatch.LiveSettings` (keys are field names).
        username_key: where the user name is.
        password_key: where the password is.
        refresh_timeout: as for :class:`BearerAuth`.

    Values are used exactly as they are (UTF-8 for text); a user name with a ``:`` is
    refused (``ValueError``), as RFC 7617 requires.
    """

    def __init__(
        self,
        source: SecretWatcher | LiveSettings[Any],
        username_key: str,
        password_key: str,
        *,
        refresh_timeout: float = DEFAULT_REFRESH_TIMEOUT,
    ):
        super().__init__(source, (username_key, password_key), refresh_timeout)
        self.username_key = username_key
        self.password_key = password_key

    def _header(self, values: Values) -> str:
        username, password = (v.encode() if isinstance(v, str) else v for v in values)
        if b":" in username:
            raise ValueError(
                f"{self._reader.where}: the user name of {self.username_key!r} has a ':'"
            )
        return "Basic " + base64.b64encode(username + b":" + password).decode("ascii")

    def __repr__(self) -> str:
        return (
            f"BasicAuth(username_key={self.username_key!r}, password_key={self.password_key!r}, "
            f"refresh_timeout={self.refresh_timeout})"
        )


def _endpoint(url: httpx.URL) -> str:
    """``url`` without what may hold a secret: user information, query and fragment."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))
