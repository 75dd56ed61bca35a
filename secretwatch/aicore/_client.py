"""``SecretsAPI``: create, update, read, list and delete AI Core generic secrets, and wait
until a tenant-wide secret has replicated into every resource group."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from secretwatch._backoff import backoff
from secretwatch._http import bounded_client
from secretwatch.aicore._answers import (
    Details,
    Page,
    QuotaAnswer,
    api_error,
    check_status,
    parse,
    read_body,
)
from secretwatch.aicore._auth import ClientCredentials
from secretwatch.aicore._credentials import Credentials, credentials_from_service_key, resolve
from secretwatch.aicore._errors import AICoreError, MalformedResponseError, ReplicationTimeoutError
from secretwatch.aicore._rules import check_data, check_labels, check_name
from secretwatch.aicore._scope import Scope
from secretwatch.aicore._secret import Quota, Secret

__all__ = ["MAX_LISTED", "SecretsAPI"]

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_PAGE = 100
MAX_LISTED = 10_000  # secrets list() reads at most (the default quota is a handful)


class SecretsAPI:
    """A client of the AI API's generic secrets (``/v2/admin/secrets``).

    Args:
        base_url: the AI API URL (``/v2`` is added when missing).
        auth: an ``httpx.Auth``, e.g. :class:`ClientCredentials` (see :meth:`from_env`).
        retries: retries of a request answered 429, 502, 503 or 504, or that could not
            connect; with exponential backoff and jitter (429 honours ``Retry-After``).
            400, 401 (after one new token), 403, 404 and others are not retried.
        backoff: the first retry's delay, in seconds; it doubles up to ``max_backoff``.
        timeout: seconds per request: to connect, for each read, and for the whole answer.
        sleep: how to wait between retries (tests pass a recorder).

    Answers are not trusted: a body is read up to 1 MiB (``MAX_ANSWER_BYTES``), within
    ``timeout``, uncompressed; a redirect is not followed (the credentials would go with
    it); a 2xx body must have the documented shape. Anything else raises a
    :class:`MalformedResponseError` naming the endpoint and the problem, never the body.
    """

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v2") else f"{base}/v2"
        # no compressed answers: a body's size is bounded as it arrives (see _answers); and
        # every request ends within the timeout, its status line and headers included
        headers = {"Accept-Encoding": "identity"}
        self._client = bounded_client(self.base_url, timeout=timeout, auth=auth, headers=headers)
        self._auth = auth
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

    @classmethod
    def from_env(
        cls,
        *,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        auth_url: str | None = None,
        base_url: str | None = None,
        cert_url: str | None = None,
        cert_str: str | None = None,
        key_str: str | None = None,
        cert_file_path: str | None = None,
        key_file_path: str | None = None,
        **options: Any,
    ) -> SecretsAPI:
        """Credentials from the first source that gives any, in the order of SAP's SDK:
        these arguments, ``AICORE_SERVICE_KEY`` (the service key's JSON, or a file holding
        it), the ``AICORE_*`` variables, the profile file (``$AICORE_HOME/config.json``, or
        ``config_<profile>.json`` with ``profile`` or ``AICORE_PROFILE``), and an ``aicore``
        binding in ``VCAP_SERVICES``. A client secret, or an X.509 certificate and key.
        ``options`` as for the constructor.

        Raises:
            AICoreError: no source gives credentials, or the one that does is incomplete or
                malformed (the message names it and what is missing, never a value).
        """
        explicit = {
            "client_id": client_id,
            "client_secret": client_secret,
            "auth_url": auth_url,
            "base_url": base_url,
            "cert_url": cert_url,
            "cert_str": cert_str,
            "key_str": key_str,
            "cert_file_path": cert_file_path,
            "key_file_path": key_file_path,
        }
        found = resolve(explicit, environ=environ, profile=profile)
        return cls.from_credentials(found.credentials, **options)

    @classmethod
    def from_service_key(cls, key: Mapping[str, Any], **options: Any) -> SecretsAPI:
        """From a service key, parsed from its JSON: ``clientid``, ``url``,
        ``serviceurls.AI_API_URL``, and ``clientsecret`` or (X.509) ``certificate``,
        ``key`` and ``certurl``."""
        return cls.from_credentials(credentials_from_service_key(key), **options)

    @classmethod
    def from_credentials(cls, credentials: Credentials, **options: Any) -> SecretsAPI:
        """From resolved :class:`Credentials` (see ``_credentials.resolve``)."""
        auth = ClientCredentials(
            credentials.token_url,
            credentials.client_id,
            credentials.client_secret,
            certificate=credentials.certificate,
            timeout=float(options.get("timeout", 30.0)),
            sleep=options.get("sleep", time.sleep),
        )
        return cls(credentials.base_url, auth, **options)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> SecretsAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SecretsAPI(base_url={self.base_url!r})"

    # -- the endpoints ---------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        data: Mapping[str, bytes | str],
        labels: Mapping[str, str] | None = None,
        scope: Scope,
    ) -> None:
        """Create a secret with ``data`` (raw values; encoded here) and ``labels``."""
        check_name(name)
        body: dict[str, Any] = {"name": name, "data": _encoded(check_data(data))}
        if labels:
            check_labels(labels, patch=False)
            body["labels"] = _label_list(labels)
        self._request("POST", "/admin/secrets", scope, body=body)

    def update(
        self,
        name: str,
        *,
        data: Mapping[str, bytes | str] | None = None,
        labels: Mapping[str, str] | None = None,
        scope: Scope,
    ) -> None:
        """Replace the data (send every key) and/or set labels (``""`` removes one)."""
        check_name(name)
        if data is None and not labels:
            raise ValueError("update() needs data, labels, or both")
        body: dict[str, Any] = {}
        if data is not None:
            body["data"] = _encoded(check_data(data))
        if labels:
            check_labels(labels, patch=True)
            body["labels"] = _label_list(labels)
        self._request("PATCH", f"/admin/secrets/{quote(name)}", scope, body=body)

    def get(self, name: str, *, scope: Scope) -> Secret:
        """The secret's name, creation time, labels and replication status.

        Raises:
            MalformedResponseError: the answer is not a ``GenericSecretDetails``.
        """
        check_name(name)
        path = f"/admin/secrets/{quote(name)}"
        body = self._request("GET", path, scope, read=True)
        return Secret._from_details(parse(Details, body, "GET", _v2(path)), "GET", _v2(path))

    def list(self, *, scope: Scope) -> list[Secret]:
        """Every secret of the scope (all pages)."""
        return list(self._pages(scope))

    def delete(self, name: str, *, scope: Scope) -> None:
        """Delete the secret."""
        check_name(name)
        self._request("DELETE", f"/admin/secrets/{quote(name)}", scope)

    def quota(self, *, scope: Scope) -> Quota:
        """The generic-secret quota of the scope (``GET /admin/resourceQuota/secrets``):
        how many secrets it holds, and the most it may.

        Raises:
            MalformedResponseError: the answer is not the documented quota object.
        """
        path = "/admin/resourceQuota/secrets"
        answer = parse(QuotaAnswer, self._request("GET", path, scope, read=True), "GET", _v2(path))
        return Quota(answer.usage.count if answer.usage else None, answer.quota.maxCount)

    def wait_replicated(
        self,
        name: str,
        *,
        timeout: float = 300.0,
        interval: float = 5.0,
        scope: Scope | None = None,
    ) -> Secret:
        """Poll :meth:`get` until every resource group has the secret; return it.

        Only tenant-wide secrets are replicated, so the default scope is tenant-wide.

        Raises:
            ReplicationTimeoutError: not replicated after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            secret = self.get(name, scope=scope or Scope.tenant_wide())
            if secret.replicated:
                return secret
            if time.monotonic() >= deadline:
                pending = sorted(k for k, v in (secret.replication or {}).items() if not v)
                raise ReplicationTimeoutError(name, timeout, pending)
            self._sleep(min(interval, max(0.0, deadline - time.monotonic())))

    # -- requests --------------------------------------------------------------------

    def _pages(self, scope: Scope) -> Iterator[Secret]:
        skip = 0
        while True:
            params = {"$top": str(_PAGE), "$skip": str(skip), "$count": "true"}
            body = self._request("GET", "/admin/secrets", scope, params=params, read=True)
            page = parse(Page, body, "GET", _v2("/admin/secrets"))
            yield from (
                Secret._from_details(d, "GET", _v2("/admin/secrets")) for d in page.resources
            )
            skip += len(page.resources)
            if not page.resources or skip >= (skip if page.count is None else page.count):
                return
            if skip >= MAX_LISTED:
                problem = f"more than {MAX_LISTED} secrets (the most list() reads)"
                raise MalformedResponseError("GET", _v2("/admin/secrets"), problem)

    def _request(
        self,
        method: str,
        path: str,
        scope: Scope,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        read: bool = False,
    ) -> bytes:
        """Send a request, retried as the class says; the body of its 2xx answer if ``read``.

        Raises:
            APIError: the API answered with an error.
            MalformedResponseError: an answer it never gives (see ``read_body``).
            AICoreError: no answer (after the retries).
        """
        request = self._client.build_request(
            method,
            self.base_url + path,
            content=None if body is None else json.dumps(body).encode(),
            headers={**scope.headers, "Content-Type": "application/json"},
            params=params,
        )
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            failure: AICoreError | None = None
            retried = False
            try:
                response, answer = self._exchange(request, method, _v2(path), read=read)
            except httpx.HTTPError as exc:
                failure = self._failure(method, path, exc)
                # a create that may have reached the API is not sent twice (a 409 would say
                # the secret exists when this very request created it); and what is not a
                # network failure (a bad URL) is not retried either
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                network = isinstance(exc, httpx.TransportError)
                retried = network and not last and (method != "POST" or unsent)
            if failure is not None:
                if not retried:  # raised here, not in the handler: the exception it handled
                    raise failure  # (and its frames) hold the request, and the credentials
                self._sleep(self._delay(attempt))
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                wait = _retry_after(response)
                self._sleep(self._delay(attempt) if wait is None else wait)
                continue
            if response.is_error:
                raise api_error(response, answer)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(
        self, request: httpx.Request, method: str, path: str, *, read: bool
    ) -> tuple[httpx.Response, bytes]:
        """Send ``request`` once (twice after a 401 with a new token); the response,
        closed, and its body when it is needed: a 2xx one if ``read``, an error's."""
        started = time.monotonic()
        response = self._client.send(request, stream=True)
        if response.status_code == 401 and isinstance(self._auth, ClientCredentials):
            response.close()  # revoked or expired early: one new token, one more try
            self._auth.forget(request.headers["Authorization"].removeprefix("Bearer "))
            response = self._client.send(request, stream=True)
        try:
            check_status(response, method, path)
            wanted = read if response.is_success else response.is_error
            if not wanted or response.status_code in _RETRY_STATUSES:
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

    def _failure(self, method: str, path: str, exc: httpx.HTTPError) -> AICoreError:
        """What a request that got no answer raises: the endpoint and the kind of failure."""
        late = (
            f", not done within {self._timeout:g} s"
            if isinstance(exc, httpx.TimeoutException)
            else ""
        )
        return AICoreError(f"{method} {_v2(path)}: {type(exc).__name__}{late}")

    def _delay(self, attempt: int) -> float:
        return backoff(attempt, first=self._backoff, most=self._max_backoff)


def _encoded(values: Mapping[str, bytes]) -> dict[str, str]:
    """Keys exactly as given; values base64 (the API's form; Kubernetes decodes them)."""
    return {key: base64.b64encode(value).decode("ascii") for key, value in values.items()}


def _label_list(labels: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in labels.items()]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(0.0, float(value)), 300.0)
    except ValueError:
        return None


def _v2(path: str) -> str:
    """The endpoint as the API documents it, for messages: ``/v2/admin/secrets``."""
    return f"/v2{path}"
