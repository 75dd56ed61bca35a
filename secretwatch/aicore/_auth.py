"""OAuth client credentials for the AI API: a token fetched once, reused until shortly
before it expires, and fetched again when the API refuses it (401)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from urllib.parse import urlsplit

import httpx

from secretwatch._http import bounded_client
from secretwatch.aicore._answers import TokenAnswer, check_status, parse, read_body
from secretwatch.aicore._errors import APIError

__all__ = ["ClientCredentials"]

_LEEWAY = 60.0  # seconds before expiry when a token counts as expired


class ClientCredentials(httpx.Auth):
    """``httpx`` authentication with an OAuth client-credentials token from ``token_url``.

    The token request is sent by this object, on a connection of its own, so that its
    answer is read as the API's are (at most 1 MiB, within ``timeout``, no redirect, the
    documented shape; else a :class:`MalformedResponseError`): an answer that passes through
    an ``httpx`` auth flow is read whole. :class:`SecretsAPI` calls :meth:`forget` when the
    API answers 401, and sends the request once more with a new token.

    Args:
        token_url: the token endpoint (``<url>/oauth/token``).
        client_id: the service key's ``clientid``.
        client_secret: the service key's ``clientsecret``.
        timeout: seconds for the token request, its answer included.
    """

    def __init__(
        self, token_url: str, client_id: str, client_secret: str, *, timeout: float = 30.0
    ):
        self._token_url = token_url
        self._path = urlsplit(token_url).path or "/"
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0  # how many tokens were fetched

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self._token_url!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request

    def token(self) -> str:
        """A valid token: the one held, or a new one."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
        return self._fetch()

    def forget(self, token: str) -> None:
        """The API refused ``token`` (revoked, or expired early): the next request fetches
        a new one (unless another thread has already)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> str:
        headers = {"Accept-Encoding": "identity"}
        with bounded_client(self._token_url, timeout=self._timeout, headers=headers) as client:
            started = time.monotonic()
            with client.stream("POST", self._token_url, data=self._form) as response:
                check_status(response, "POST", self._path)
                if response.status_code != 200:
                    raise APIError(response.status_code, None, "the token request failed", None)
                body = read_body(
                    response, "POST", self._path, started=started, timeout=self._timeout
                )
        answer = parse(TokenAnswer, body, "POST", self._path)
        lifetime = answer.expires_in
        with self._lock:
            self._token = answer.access_token
            # a minute early, or half the lifetime of a short-lived token
            self._expires = time.monotonic() + lifetime - min(_LEEWAY, lifetime / 2)
            self.fetched += 1
        return answer.access_token
