"""``SecretsAPI``: create, update, read, list and delete AI Core generic secrets, and wait
until a tenant-wide secret has replicated into every resource group."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from secretwatch.aicore._answers import Details, Page, QuotaAnswer, parse
from secretwatch.aicore._auth import ClientCredentials
from secretwatch.aicore._credentials import Credentials, credentials_from_service_key, resolve
from secretwatch.aicore._errors import (
    APIError,
    DeadlineExceededError,
    MalformedResponseError,
    NoResourceGroupsError,
    ReplicationTimeoutError,
)
from secretwatch.aicore._retry import RETRY_STATUSES
from secretwatch.aicore._rules import check_data, check_labels, check_name
from secretwatch.aicore._scope import Scope
from secretwatch.aicore._secret import Quota, Secret
from secretwatch.aicore._sender import Sender
from secretwatch.aicore._writes import Writes

__all__ = ["MAX_LISTED", "POLL_INTERVAL", "SecretsAPI"]

_PAGE = 100
MAX_LISTED = 10_000  # secrets list() reads at most (the default quota is a handful)
POLL_INTERVAL = 1.0  # seconds between two reads of wait_replicated, by default


class SecretsAPI:
    """A client of the AI API's generic secrets (``/v2/admin/secrets``).

    Args:
        base_url: the AI API URL (``/v2`` is added when missing).
        auth: an ``httpx.Auth``, e.g. :class:`ClientCredentials` (see :meth:`from_env`).
        retries: retries of a request whose repetition is safe: ``GET``, ``DELETE`` and
            ``PATCH`` answered 429, 500, 502, 503 or 504 or met by a network failure, and
            any request that could not connect (a ``POST`` that may have reached the API
            is never sent twice); with exponential backoff and jitter (``Retry-After``
            honoured). 400, 401 (after one new token), 403, 404 and others are not retried.
        backoff: the first retry's delay, in seconds; it doubles up to ``max_backoff``.
        timeout: seconds per request: to connect, for each read, and for the whole answer.
        retry_time: seconds after a request's first attempt when no retry starts any more
            (a retry whose wait would end later is not made): with ``timeout``, what bounds
            one call in time when there is no :attr:`deadline`.
        deadline: when every call must have ended (``time.monotonic()``), token requests,
            retries and :meth:`wait_replicated` included; ``None`` for none. Also an
            attribute, to set for a whole command (``api.deadline = time.monotonic() + 300``).
            A call still under way then raises :class:`DeadlineExceededError` (or
            :class:`ReplicationTimeoutError` for the wait), naming what it was doing.
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
        retry_time: float = 120.0,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v2") else f"{base}/v2"
        self._sender = Sender(
            self.base_url,
            auth,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            timeout=timeout,
            retry_time=retry_time,
            sleep=sleep,
        )
        self._sleep = sleep
        self._writes = Writes()
        self.deadline = deadline

    @property
    def deadline(self) -> float | None:
        """When every call must have ended (``time.monotonic()``), or ``None``."""
        return self._sender.deadline

    @deadline.setter
    def deadline(self, deadline: float | None) -> None:
        self._sender.deadline = deadline

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
        self._sender.close()

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
        with self._writes.writing(scope, name):
            self._sender.request("POST", "/admin/secrets", scope, body=body)

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
        with self._writes.writing(scope, name):
            self._sender.request("PATCH", f"/admin/secrets/{quote(name)}", scope, body=body)

    def get(self, name: str, *, scope: Scope) -> Secret:
        """The secret's name, creation time, labels and replication status.

        Raises:
            MalformedResponseError: the answer is not a ``GenericSecretDetails``.
        """
        return self._get(name, scope, until=None)

    def _get(self, name: str, scope: Scope, *, until: float | None) -> Secret:
        check_name(name)
        path = f"/admin/secrets/{quote(name)}"
        body = self._sender.request("GET", path, scope, read=True, until=until)
        return Secret._from_details(parse(Details, body, "GET", _v2(path)), "GET", _v2(path))

    def list(self, *, scope: Scope) -> list[Secret]:
        """Every secret of the scope (all pages)."""
        return list(self._pages(scope))

    def delete(self, name: str, *, scope: Scope) -> None:
        """Delete the secret."""
        check_name(name)
        self._sender.request("DELETE", f"/admin/secrets/{quote(name)}", scope)

    def quota(self, *, scope: Scope) -> Quota:
        """The generic-secret quota of the scope (``GET /admin/resourceQuota/secrets``):
        how many secrets it holds, and the most it may.

        Raises:
            MalformedResponseError: the answer is not the documented quota object.
        """
        path = "/admin/resourceQuota/secrets"
        body = self._sender.request("GET", path, scope, read=True)
        answer = parse(QuotaAnswer, body, "GET", _v2(path))
        return Quota(answer.usage.count if answer.usage else None, answer.quota.maxCount)

    def wait_replicated(
        self,
        name: str,
        *,
        timeout: float = 300.0,
        interval: float = POLL_INTERVAL,
        scope: Scope | None = None,
    ) -> Secret:
        """Poll :meth:`get` every ``interval`` seconds until every resource group of the
        replication map is ``true``; return the secret as last read.

        Only a read that started after this client's last :meth:`create` or :meth:`update`
        of the secret returned counts (a read made while one is under way is not). So
        "replicated" means: a map read after the change was accepted listed every resource
        group as done. It cannot prove that the groups hold *this* version: the API's map
        carries no version, so a map that was all ``true`` before the change and that the
        API has not yet reset looks the same as one after. Called without a change by this
        client, any read counts.

        Only tenant-wide secrets are replicated, so the scope is tenant-wide. The wait ends
        by ``timeout``, or by :attr:`deadline` when that is sooner (its reads too).

        Raises:
            ValueError: ``scope`` is not tenant-wide (nothing is replicated there).
            NoResourceGroupsError: the map lists no resource group (nothing to wait for).
            ReplicationTimeoutError: not replicated in time.
        """
        scope = scope or Scope.tenant_wide()
        if scope != Scope.tenant_wide():
            raise ValueError(f"only tenant-wide secrets are replicated, not a {scope} one")
        started = time.monotonic()
        ends = started + timeout
        if self.deadline is not None:
            ends = min(ends, self.deadline)
        pending: list[str] = []
        first = True
        busy: str | None = None  # the last read that failed as a busy API fails
        while True:
            read = time.monotonic()
            late: DeadlineExceededError | None = None
            secret: Secret | None = None
            try:  # the first read is made whatever the timeout (0: look once), by the deadline
                secret = self._get(name, scope, until=None if first else ends)
            except DeadlineExceededError as exc:
                late = exc
            except APIError as exc:
                if exc.status not in RETRY_STATUSES:
                    raise
                busy = str(exc)  # its retries ran out: the next read may fare better
            first = False
            if late is not None:  # raised outside the handler, as _request's errors are
                waited = _tenths(time.monotonic() - started)
                # what the API said last says more than a read the deadline cut short
                reading = busy or (str(late) if late.attempts else None)
                raise ReplicationTimeoutError(name, waited, pending, reading=reading)
            if secret is not None and self._writes.read_after(scope, name, read):
                if secret.replication == {}:
                    raise NoResourceGroupsError(name)
                if secret.replicated:
                    return secret
                pending = sorted(k for k, v in (secret.replication or {}).items() if not v)
            now = time.monotonic()
            if now < ends:
                self._sleep(min(interval, ends - now))
                now = time.monotonic()
            if now >= ends:  # no read is started that the time would cut short
                raise ReplicationTimeoutError(name, _tenths(now - started), pending, reading=busy)

    # -- requests --------------------------------------------------------------------

    def _pages(self, scope: Scope) -> Iterator[Secret]:
        skip = 0
        while True:
            params = {"$top": str(_PAGE), "$skip": str(skip), "$count": "true"}
            body = self._sender.request("GET", "/admin/secrets", scope, params=params, read=True)
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


def _encoded(values: Mapping[str, bytes]) -> dict[str, str]:
    """Keys exactly as given; values base64 (the API's form; Kubernetes decodes them)."""
    return {key: base64.b64encode(value).decode("ascii") for key, value in values.items()}


def _label_list(labels: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in labels.items()]


def _tenths(seconds: float) -> float:
    return round(seconds, 1)


def _v2(path: str) -> str:
    """The endpoint as the API documents it, for messages: ``/v2/admin/secrets``."""
    return f"/v2{path}"
