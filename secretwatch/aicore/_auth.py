"""OAuth client credentials for the AI API: a token fetched once, reused until shortly
before it expires, and fetched again when the API refuses it (401). With a client secret in
the form, or, for an X.509 service key, over mutual TLS with the key's certificate."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Generator
from urllib.parse import urlsplit

import httpx

from secretwatch._backoff import backoff
from secretwatch._http import bounded_client
from secretwatch.aicore._answers import TokenAnswer, check_status, parse, read_body
from secretwatch.aicore._errors import AICoreError, APIError
from secretwatch.aicore._x509 import CertificateSource, client_context

__all__ = ["TOKEN_RETRIES", "ClientCredentials"]

_LEEWAY = 60.0  # seconds before expiry when a token counts as expired
TOKEN_RETRIES = 4  # retries of a token request (SAP's SDK makes 3 attempts)
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 300.0  # seconds of a Retry-After honoured at most (the deadline first)


class ClientCredentials(httpx.Auth):
    """``httpx`` authentication with an OAuth client-credentials token from ``token_url``.

    The token request is sent by this object, on a connection of its own, so that its
    answer is read as the API's are (at most 1 MiB, no redirect, the documented shape; else
    a :class:`MalformedResponseError`): an answer that passes through an ``httpx`` auth flow
    is read whole. :class:`SecretsAPI` calls :meth:`forget` when the API answers 401, and
    sends the request once more with a new token.

    A token request answered 408, 429 (after its ``Retry-After``), 500, 502, 503 or 504, or
    that fails to connect or breaks off, is sent again, at most ``retries`` times, with
    exponential backoff and jitter; all of them end within ``timeout`` seconds, and by
    ``deadline`` when one is set. 400, 401, 403 are not retried.

    Args:
        token_url: the token endpoint (``<url>/oauth/token``, ``<certurl>/oauth/token``).
        client_id: the service key's ``clientid``.
        client_secret: the service key's ``clientsecret`` (or ``None`` with ``certificate``).
        certificate: an X.509 key's certificate chain and key, presented to the token
            endpoint only (loaded here, once; see ``_x509``).
        timeout: seconds for a token request, its retries and answers included.
        retries: retries of a token request.
        backoff: the first retry's delay in seconds; it doubles up to ``max_backoff``.
        sleep: how to wait between retries.

    Attributes:
        deadline: a ``time.monotonic()`` by which every token request ends (a whole
            command's), or ``None``.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        certificate: CertificateSource | None = None,
        timeout: float = 30.0,
        retries: int = TOKEN_RETRIES,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if (client_secret is None) == (certificate is None):
            raise ValueError("give a client secret or a certificate, not both or neither")
        self._token_url = token_url
        self._path = urlsplit(token_url).path or "/"
        self._form = {"grant_type": "client_credentials", "client_id": client_id}
        if client_secret is not None:
            self._form["client_secret"] = client_secret
        # the key is loaded now, once: it then lives in the context, not in a file
        self._tls: ssl.SSLContext | None = None
        if certificate is not None:
            if urlsplit(token_url).scheme != "https":
                raise AICoreError(f"{certificate.where}: the token URL must be https://")
            self._tls = client_context(certificate)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self.deadline: float | None = None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0  # how many tokens were fetched

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self._token_url!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request

    @property
    def path(self) -> str:
        """The token endpoint's path (``/oauth/token``), for messages."""
        return self._path

    def token(self, *, deadline: float | None = None) -> str:
        """A valid token: the one held, or a new one (fetched by ``deadline``, a
        ``time.monotonic()``, and by :attr:`deadline`, when given)."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
        return self._fetch(deadline)

    def forget(self, token: str) -> None:
        """The API refused ``token`` (revoked, or expired early): the next request fetches
        a new one (unless another thread has already)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self, deadline: float | None) -> str:
        bounds = (time.monotonic() + self._timeout, deadline, self.deadline)
        end = min(bound for bound in bounds if bound is not None)
        attempt = 0
        while True:
            attempt += 1
            left = end - time.monotonic()
            if left <= 0:
                raise AICoreError(f"POST {self._path}: no token by the deadline")
            wait: float | None = None
            problem = ""
            try:
                status, body, wait = self._once(left)
            except httpx.TransportError as exc:
                late = ""
                if isinstance(exc, httpx.TimeoutException):
                    late = (
                        f", not done within {self._timeout:g} s"
                        if end == bounds[0]
                        else ", not done by the deadline"
                    )
                status, body, problem = 0, b"", f"{type(exc).__name__}{late}"
                if _tls_refused(exc):  # a certificate refused is refused again
                    raise AICoreError(
                        f"POST {self._path}: {type(exc).__name__} (TLS: a certificate was "
                        "refused, the server's or ours)"
                    ) from None
            if status == 200:
                break
            if status and status not in _RETRY_STATUSES:  # 400, 401, 403...: not retried
                raise APIError(status, None, "the token request failed", None)
            if wait is None:
                wait = backoff(attempt - 1, first=self._backoff, most=self._max_backoff)
            if attempt > self._retries or time.monotonic() + wait >= end:
                tries = f" ({attempt} attempts)" if attempt > 1 else ""
                if status:
                    raise APIError(status, None, f"the token request failed{tries}", None)
                raise AICoreError(f"POST {self._path}: {problem}{tries}")
            self._sleep(wait)
        answer = parse(TokenAnswer, body, "POST", self._path)
        lifetime = answer.expires_in
        with self._lock:
            self._token = answer.access_token
            # a minute early, or half the lifetime of a short-lived token
            self._expires = time.monotonic() + lifetime - min(_LEEWAY, lifetime / 2)
            self.fetched += 1
        return answer.access_token

    def _once(self, left: float) -> tuple[int, bytes, float | None]:
        """One token request within ``left`` seconds: its status, its body if 200, and the
        seconds its ``Retry-After`` asks for."""
        headers = {"Accept-Encoding": "identity"}
        with bounded_client(
            self._token_url, timeout=left, ssl_context=self._tls, headers=headers
        ) as client:
            started = time.monotonic()
            with client.stream("POST", self._token_url, data=self._form) as response:
                check_status(response, "POST", self._path)
                if response.status_code != 200:
                    return response.status_code, b"", _retry_after(response)
                body = read_body(response, "POST", self._path, started=started, timeout=left)
        return 200, body, None


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds of a ``Retry-After`` in seconds (a date is not read), at most 300."""
    try:
        return min(max(0.0, float(response.headers.get("Retry-After", ""))), _MAX_RETRY_AFTER)
    except ValueError:
        return None


def _tls_refused(exc: BaseException) -> bool:
    """Whether ``exc`` comes of a TLS handshake that refused a certificate (an alert, or a
    failed verification), not of a connection cut short."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) and not isinstance(
            seen, ssl.SSLEOFError | ssl.SSLZeroReturnError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
