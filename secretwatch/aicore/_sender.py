"""Sending one request of the secrets client: with a token, retried where that is safe
(see ``_retry``), and ended by the client's deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from secretwatch._backoff import backoff
from secretwatch._http import bounded_client, ending_by
from secretwatch.aicore._answers import api_error, check_status, read_body
from secretwatch.aicore._auth import ClientCredentials
from secretwatch.aicore._errors import AICoreError, DeadlineExceededError, MalformedResponseError
from secretwatch.aicore._retry import RETRY_STATUSES, retry_after, retryable
from secretwatch.aicore._scope import Scope

__all__ = ["Sender"]


class Sender:
    """The HTTP side of :class:`SecretsAPI` (its arguments are documented there)."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth,
        *,
        retries: int,
        backoff: float,
        max_backoff: float,
        timeout: float,
        retry_time: float,
        sleep: Callable[[float], None],
    ):
        self.base_url = base_url
        # no compressed answers: a body's size is bounded as it arrives (see _answers); and
        # every request ends within the timeout, its status line and headers included
        headers = {"Accept-Encoding": "identity"}
        self._client = bounded_client(base_url, timeout=timeout, auth=auth, headers=headers)
        self._auth = auth
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._retry_time = retry_time
        self._sleep = sleep
        self.deadline: float | None = None

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        scope: Scope,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        read: bool = False,
        until: float | None = None,
    ) -> bytes:
        """Send a request, retried as the class says; the body of its 2xx answer if ``read``.
        It ends by :attr:`deadline`, or by ``until`` when that is sooner.

        Raises:
            APIError: the API answered with an error.
            MalformedResponseError: an answer it never gives (see ``read_body``).
            DeadlineExceededError: the deadline passed first.
            AICoreError: no answer (after the retries).
        """
        request = self._client.build_request(
            method,
            self.base_url + path,
            content=None if body is None else json.dumps(body).encode(),
            headers={**scope.headers, "Content-Type": "application/json"},
            params=params,
        )
        deadline = self.deadline if until is None else min(until, self.deadline or until)
        first = time.monotonic()
        retries_end = first + self._retry_time
        doing = f"{method} {_v2(path)}"
        attempt = 0
        while True:
            if deadline is not None and time.monotonic() >= deadline:  # before any attempt
                raise DeadlineExceededError(doing, attempt, "none: no time was left")
            failure: AICoreError | None = None
            retry = False
            wait: float | None = None
            try:
                with ending_by(deadline):
                    response, answer = self._exchange(request, method, _v2(path), read=read)
            except _TokenFailure as exc:  # the API request itself was not sent
                failure, retry = exc.error, exc.retryable
            except httpx.HTTPError as exc:
                failure, retry = self._failure(doing, exc), retryable(method, exc)
            attempt += 1
            if failure is None:
                if not retryable(method, response.status_code):
                    if response.is_error:
                        raise api_error(response, answer)
                    return answer
                failure, retry, wait = api_error(response, answer), True, retry_after(response)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise DeadlineExceededError(doing, attempt, str(failure))
            wait = self._delay(attempt - 1) if wait is None else wait
            if not retry or attempt > self._retries or now + wait > retries_end:
                raise failure  # raised here, not in a handler: the exception it handled
            if deadline is not None and now + wait >= deadline:  # (and its frames) hold
                raise DeadlineExceededError(doing, attempt, str(failure))  # the credentials
            self._sleep(wait)

    def _exchange(
        self, request: httpx.Request, method: str, path: str, *, read: bool
    ) -> tuple[httpx.Response, bytes]:
        """Send ``request`` once (twice after a 401 with a new token); the response,
        closed, and its body when it is needed: a 2xx one if ``read``, an error's."""
        started = time.monotonic()
        response = self._send(request, method, path)
        if response.status_code == 401 and isinstance(self._auth, ClientCredentials):
            response.close()  # revoked or expired early: one new token, one more try
            self._auth.forget(request.headers["Authorization"].removeprefix("Bearer "))
            response = self._send(request, method, path)
        try:
            check_status(response, method, path)
            wanted = read if response.is_success else response.is_error
            if not wanted or response.status_code in RETRY_STATUSES:
                return response, b""
            timeout = self._timeout
            try:
                body = read_body(response, method, path, started=started, timeout=timeout)
            except MalformedResponseError:
                if response.is_success:
                    raise
                body = b""  # an error's status says enough without its body
            return response, body
        finally:
            response.close()

    def _send(self, request: httpx.Request, method: str, path: str) -> httpx.Response:
        """Send ``request`` with a token fetched here, not in the auth flow: so that a failed
        token request is known not to have sent the API request, and so that the token
        request gets the deadline. (Its HTTP request ends by the deadline already, through
        ``ending_by``, a context variable.) Another ``httpx.Auth`` is used as it is."""
        if not isinstance(self._auth, ClientCredentials):
            return self._client.send(request, stream=True)
        failure: httpx.HTTPError | None = None
        token = ""
        try:
            # its own retries, and their waits, end by the client's deadline too
            token = self._auth.token(deadline=self.deadline)
        except httpx.HTTPError as exc:
            failure = exc
        except AICoreError as exc:  # after the token request's own retries
            if self.deadline is not None and time.monotonic() >= self.deadline:
                doing = f"POST {self._auth.path} (a token for {method} {path})"
                raise DeadlineExceededError(doing, 1, str(exc)) from None
            raise
        if failure is not None:
            doing = f"POST {_token_path(failure)} (a token for {method} {path})"
            raise _TokenFailure(self._failure(doing, failure), retryable("GET", failure))
        request.headers["Authorization"] = f"Bearer {token}"
        return self._client.send(request, stream=True, auth=None)  # None: no auth flow

    def _failure(self, doing: str, exc: httpx.HTTPError) -> AICoreError:
        """What a request that got no answer raises: the endpoint and the kind of failure."""
        late = ""
        if isinstance(exc, httpx.TimeoutException):
            cut = self.deadline is not None and time.monotonic() >= self.deadline
            late = ", cut at the deadline" if cut else f", not done within {self._timeout:g} s"
        return AICoreError(f"{doing}: {type(exc).__name__}{late}")

    def _delay(self, attempt: int) -> float:
        return backoff(attempt, first=self._backoff, most=self._max_backoff)


class _TokenFailure(Exception):
    """The token request made before an API request failed: ``error`` to raise, and
    whether the API request may be sent again (it was not sent)."""

    def __init__(self, error: AICoreError, retryable: bool):
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable


def _token_path(exc: httpx.HTTPError) -> str:
    try:
        return exc.request.url.path
    except RuntimeError:  # httpx sets the request on the errors it raises while sending
        return "the token endpoint"


def _v2(path: str) -> str:
    """The endpoint as the API documents it, for messages: ``/v2/admin/secrets``."""
    return f"/v2{path}"
