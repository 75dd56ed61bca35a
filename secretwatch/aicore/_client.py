"""``SecretsAPI``: create, update, read, list and delete AI Core generic secrets, and wait
until a tenant-wide secret has replicated into every resource group."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from secretwatch._backoff import backoff
from secretwatch.aicore._auth import ClientCredentials
from secretwatch.aicore._errors import AICoreError, APIError, ReplicationTimeoutError
from secretwatch.aicore._rules import check_data, check_labels, check_name
from secretwatch.aicore._scope import Scope

__all__ = ["Secret", "SecretsAPI"]

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_REPLICATION_FIELDS = ("resourceGroupSecretReplicationStatus", "resourceGroupSecretsSyncStatus")
_PAGE = 100


@dataclass(frozen=True, slots=True)
class Secret:
    """A generic secret as the API describes it (never its values).

    Attributes:
        name: its name.
        created_at: when it was created, if the API said.
        labels: its labels.
        replication: for a tenant-wide secret, resource group -> replicated; else ``None``.
    """

    name: str
    created_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)
    replication: dict[str, bool] | None = None

    @property
    def replicated(self) -> bool:
        """Whether every resource group has it (``False`` while the status is unknown)."""
        return bool(self.replication) and all(self.replication.values())  # type: ignore[union-attr]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Secret:
        """From a ``GenericSecretDetails`` body (either name of the replication field)."""
        created = body.get("createdAt")
        labels = {str(item["key"]): str(item.get("value", "")) for item in body.get("labels") or []}
        replication = next(
            (body[name] for name in _REPLICATION_FIELDS if body.get(name) is not None), None
        )
        return cls(
            name=str(body["name"]),
            created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
            labels=labels,
            replication=None
            if replication is None
            else {str(k): bool(v) for k, v in replication.items()},
        )


class _Environment(BaseSettings):
    """AI Core credentials from ``AICORE_*`` variables (SAP's SDK names)."""

    model_config = SettingsConfigDict(env_prefix="AICORE_", extra="ignore")

    service_key: SecretStr | None = None  # JSON text, or the path of a file holding it
    auth_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    base_url: str | None = Field(default=None, validation_alias=AliasChoices("aicore_base_url"))


class SecretsAPI:
    """A client of the AI API's generic secrets (``/v2/admin/secrets``).

    Args:
        base_url: the AI API URL (``/v2`` is added when missing).
        auth: an ``httpx.Auth``, e.g. :class:`ClientCredentials` (see :meth:`from_env`).
        retries: retries of a request answered 429, 502, 503 or 504, or that could not
            connect; with exponential backoff and jitter (429 honours ``Retry-After``).
            400, 401 (after one new token), 403, 404 and others are not retried.
        backoff: the first retry's delay, in seconds; it doubles up to ``max_backoff``.
        timeout: seconds per request.
        sleep: how to wait between retries (tests pass a recorder).
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
        self._client = httpx.Client(auth=auth, timeout=timeout)
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

    @classmethod
    def from_env(cls, **options: Any) -> SecretsAPI:
        """Credentials from ``AICORE_SERVICE_KEY`` (the service key's JSON, or a file that
        holds it), or from ``AICORE_AUTH_URL``, ``AICORE_CLIENT_ID``,
        ``AICORE_CLIENT_SECRET`` and ``AICORE_BASE_URL``.

        Raises:
            AICoreError: the variables are missing or the service key is not valid.
        """
        env = _Environment()
        if env.service_key is not None:
            return cls.from_service_key(_service_key(env.service_key.get_secret_value()), **options)
        missing = [
            f"AICORE_{name.upper()}"
            for name in ("auth_url", "client_id", "client_secret", "base_url")
            if getattr(env, name) is None
        ]
        if missing:
            raise AICoreError(
                "no AI Core credentials: set AICORE_SERVICE_KEY, or " + ", ".join(missing)
            )
        auth_url, client_id = str(env.auth_url), str(env.client_id)
        secret = env.client_secret.get_secret_value() if env.client_secret else ""
        base_url = str(env.base_url)
        return cls._with_credentials(base_url, auth_url, client_id, secret, **options)

    @classmethod
    def from_service_key(cls, key: Mapping[str, Any], **options: Any) -> SecretsAPI:
        """From a service key (``clientid``, ``clientsecret``, ``url``,
        ``serviceurls.AI_API_URL``), parsed from its JSON."""
        base_url = key["serviceurls"]["AI_API_URL"]
        return cls._with_credentials(
            base_url, key["url"], key["clientid"], key["clientsecret"], **options
        )

    @classmethod
    def _with_credentials(
        cls, base_url: str, auth_url: str, client_id: str, secret: str, **options: Any
    ) -> SecretsAPI:
        token_url = auth_url.rstrip("/")
        if not token_url.endswith("/oauth/token"):
            token_url += "/oauth/token"
        return cls(base_url, ClientCredentials(token_url, client_id, secret), **options)

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
        """The secret's name, creation time, labels and replication status."""
        check_name(name)
        return Secret.from_api(self._request("GET", f"/admin/secrets/{quote(name)}", scope).json())

    def list(self, *, scope: Scope) -> list[Secret]:
        """Every secret of the scope (all pages)."""
        return list(self._pages(scope))

    def delete(self, name: str, *, scope: Scope) -> None:
        """Delete the secret."""
        check_name(name)
        self._request("DELETE", f"/admin/secrets/{quote(name)}", scope)

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
            body = self._request("GET", "/admin/secrets", scope, params=params).json()
            resources = body.get("resources") or []
            yield from (Secret.from_api(item) for item in resources)
            skip += len(resources)
            if not resources or skip >= int(body.get("count", skip)):
                return

    def _request(
        self,
        method: str,
        path: str,
        scope: Scope,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = self.base_url + path
        content = None if body is None else json.dumps(body).encode()
        headers = {**scope.headers, "Content-Type": "application/json"}
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._client.request(
                    method, url, content=content, headers=headers, params=params
                )
            except httpx.TransportError as exc:
                # a create that may have reached the API is not sent twice (a 409 would say
                # the secret exists when this very request created it)
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or (method == "POST" and not unsent):
                    raise AICoreError(f"{method} {path}: {type(exc).__name__}") from None
                self._sleep(self._delay(attempt))
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                wait = _retry_after(response)
                self._sleep(self._delay(attempt) if wait is None else wait)
                continue
            if response.is_error:
                raise _api_error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

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


def _api_error(response: httpx.Response) -> APIError:
    try:
        error = response.json()["error"]
        return APIError(
            response.status_code,
            error.get("code"),
            str(error.get("message", "")),
            error.get("requestId"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return APIError(response.status_code, None, response.reason_phrase, None)


def _service_key(text: str) -> dict[str, Any]:
    """The service key from its JSON, or from the file the text names."""
    if not text.lstrip().startswith("{") and os.path.isfile(text):
        with open(text, encoding="utf-8") as file:
            text = file.read()
    try:
        key = json.loads(text)
        fields = [key[name] for name in ("url", "clientid", "clientsecret")]
        fields.append(key["serviceurls"]["AI_API_URL"])
        if not all(isinstance(value, str) and value for value in fields):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise AICoreError(
            "AICORE_SERVICE_KEY is not a service key (JSON with url, clientid, clientsecret "
            "and serviceurls.AI_API_URL, or a file holding it)"
        ) from None
    return dict(key)
