"""A stand-in for the AI Core generic secrets API on 127.0.0.1, for tests and the demo.

It implements the documented contract: the OAuth token endpoint, ``/v2/admin/secrets``
with its scopes (``AI-Resource-Group``, ``AI-Tenant-Scope``), the name and label rules,
error bodies, paging, and a replication map of tenant-wide secrets that turns true after
``replication_delay`` seconds. Each accepted change can be projected into a local volume,
written as the kubelet writes it. Faults (429, 503, ...) can be queued for the next
requests; every request is recorded (without its body) for assertions.

It invents no rule: each rule it enforces names its source in a comment beside it,

- ``[spec]``: the AI API's published OpenAPI specification (the ``aicore.yaml`` that SAP's
  SDKs are generated from, AI Core 2.41), by its path;
- ``[docs]``: SAP's AI Core documentation ("Update a Generic Secret", "Consume Generic
  Secrets in Executions or Deployments", "Get Generic Secrets", "Service Plans");
- ``[RFC 6749]``: OAuth 2.0, for the token endpoint.

What no source defines is not enforced unless a test asks for it: a limit of a scope other
than tenant-wide (``quotas``), the status of a second create of one name (``exists_status``).
Headers that name no documented scope are refused rather than guessed at.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from secretwatch.testing._aicore_rules import (
    NAME,
    TENANT_WIDE,
    data_and_labels,
    error,
    json_body,
    scope_of,
)
from secretwatch.testing._aicore_tls import MutualTLS, certified
from secretwatch.testing._volume import AtomicVolume

__all__ = ["DEFAULT_QUOTAS", "FakeAICore", "RecordedRequest"]

# [docs] Service Plans, "Tenant-Wide Generic Secrets Quotas": "Each tenant can have a
# maximum of five tenant-wide secrets. If you reach this limit, you receive an error message."
DEFAULT_QUOTAS: Mapping[str, int] = {TENANT_WIDE: 5}


@dataclass
class RecordedRequest:
    """A request the stand-in received (its body is not kept)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Secret:
    data: dict[str, bytes]
    labels: dict[str, str]
    created_at: str
    updated: float = field(default_factory=time.monotonic)


class FakeAICore:
    """The stand-in server. Use as a context manager; :attr:`url` is its base URL.

    Args:
        client_id: the client id its token endpoint accepts.
        client_secret: the client secret its token endpoint accepts.
        resource_groups: the resource groups a tenant-wide secret replicates into.
        replication_delay: seconds after a tenant-wide change before every group has it.
        replication_field: the field name of the replication map in responses (the docs'
            ``resourceGroupSecretReplicationStatus`` or the spec's
            ``resourceGroupSecretsSyncStatus``).
        token_lifetime: the ``expires_in`` of its tokens.
        quotas: the most generic secrets a scope may hold, by scope (named as for
            :meth:`data`): SAP documents the tenant-wide limit only, five
            (:data:`DEFAULT_QUOTAS`). A scope left out has no limit, and its quota endpoint
            answers 501 rather than a number of the stand-in's own.
        exists_status: the status of a create of a name its scope holds already, which
            changes nothing. The spec defines none (its POST lists 200, 400 and the common
            errors), so 400 by default; SAP's Python SDK expects a 409.
    """

    def __init__(
        self,
        *,
        client_id: str = "client",
        client_secret: str = "secret",  # noqa: S107 (a test double's)
        resource_groups: tuple[str, ...] = ("default",),
        replication_delay: float = 0.0,
        replication_field: str = "resourceGroupSecretReplicationStatus",
        token_lifetime: int = 3600,
        quotas: Mapping[str, int] | None = None,
        exists_status: int = 400,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.resource_groups = resource_groups
        self.replication_delay = replication_delay
        self.replication_field = replication_field
        self.token_lifetime = token_lifetime
        self.quotas = dict(DEFAULT_QUOTAS if quotas is None else quotas)
        self.exists_status = exists_status
        self.requests: list[RecordedRequest] = []
        self.tokens: list[str] = []  # issued, newest last; revoke() empties it
        self._faults: list[tuple[int, dict[str, str]]] = []
        self._delays: list[float] = []
        self._secrets: dict[str, dict[str, _Secret]] = {}  # scope -> name -> secret
        self._projections: list[tuple[str, str, AtomicVolume]] = []
        self._projected: set[tuple[str, int, float]] = set()  # (name, volume, change) done
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._x509: MutualTLS | None = None
        self._received = threading.Condition()  # wait_for_request (issue 18, API side)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(  # a short poll: shutdown() returns within it
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL (the AI API URL and the auth URL are both this)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAICore:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and free the port (a server never started only frees it)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._close_x509()
        for timer in self._timers:
            timer.cancel()
            if timer.is_alive():
                timer.join()

    def service_key(self, *, x509: bool = False) -> dict[str, Any]:
        """A service key for this server, as AI Core hands one out; with ``x509``, an X.509
        one (``certificate``, ``key``, ``certurl``: see :meth:`serve_x509`)."""
        key: dict[str, Any] = {
            "clientid": self.client_id,
            "clientsecret": self.client_secret,
            "url": self.url,
            "serviceurls": {"AI_API_URL": self.url},
        }
        if x509:
            if self._x509 is None:
                raise RuntimeError("call serve_x509() first")
            del key["clientsecret"]
            key.update(self._x509.service_key_fields())
        return key

    # -- X.509: the token endpoint over mutual TLS (certurl) ---------------------------

    def serve_x509(
        self,
        *,
        certificate: str,
        key: str,
        client_ca: str,
        client_certificate: str,
        client_key: str,
    ) -> None:
        """Also serve the token endpoint over mutual TLS (``https``, at :attr:`cert_url`),
        as an X.509 service key's ``certurl``: it presents ``certificate`` (PEM, for
        127.0.0.1) with ``key``, requires a client certificate that ``client_ca`` signed,
        and then issues a token for ``client_id`` without a secret. ``client_certificate``
        (the whole chain) and ``client_key`` go into :meth:`service_key` ``(x509=True)``.
        Started at once; :meth:`close` stops it."""
        self._x509 = MutualTLS(
            self._server.RequestHandlerClass,
            (certificate, key, client_ca),
            {
                "credential-type": "x509",
                "certificate": client_certificate,
                "key": client_key,
            },
        )

    @property
    def cert_url(self) -> str:
        """The base URL of the mutual-TLS token endpoint (see :meth:`serve_x509`)."""
        if self._x509 is None:
            raise RuntimeError("call serve_x509() first")
        return self._x509.url

    def _close_x509(self) -> None:
        if self._x509 is not None:
            self._x509.close()

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` API requests with ``status`` (and ``Retry-After``)."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        with self._lock:
            self._faults += [(status, headers)] * times

    def delay_next(self, seconds: float) -> None:
        """Handle the next API request, then answer it only after ``seconds``."""
        with self._lock:
            self._delays.append(seconds)

    # -- issue 18, API side: a hook for tests of retries and of the replication wait -------
    def wait_for_request(self, method: str, path: str, *, timeout: float) -> bool:
        """Wait until a ``method`` request for ``path`` (without its query) has been
        received and handled (its answer may still be held back by :meth:`delay_next`);
        ``False`` if none came within ``timeout`` seconds."""

        def received() -> bool:
            return any(r.method == method and urlsplit(r.path).path == path for r in self.requests)

        with self._received:
            return self._received.wait_for(received, timeout)

    # -- end of the hook ------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (the next request is answered 401)."""
        with self._lock:
            self.tokens.clear()

    def project(self, name: str, volume: AtomicVolume, *, resource_group: str) -> None:
        """Write secret ``name`` into ``volume`` whenever it changes in ``resource_group``
        (a tenant-wide one once it has replicated there), as a mounted secret would."""
        with self._lock:
            self._projections.append((name, resource_group, volume))

    def data(self, name: str, *, scope: str) -> dict[str, bytes]:
        """The raw data the server holds for ``name`` (scope: a group, ``*`` or ``""``)."""
        with self._lock:
            return dict(self._secrets[scope][name].data)

    # -- serving ---------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append(
                RecordedRequest(handler.command, handler.path, dict(handler.headers))
            )
            status, payload, headers = self._route(handler, url.path, url.query, body)
            delay = self._delays.pop(0) if self._delays and url.path != "/oauth/token" else 0
        with self._received:  # wait_for_request (issue 18, API side)
            self._received.notify_all()
        if delay:
            threading.Event().wait(delay)  # a slow answer, after the work is done
        raw = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        for key, value in {**headers, "Content-Type": "application/json"}.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)
        if status < 300:
            self._replicate_later()

    def _route(  # noqa: PLR0911, PLR0912 (a branch and a return per route)
        self, handler: BaseHTTPRequestHandler, path: str, query: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/oauth/token":
            return self._token(body, certified(handler))
        quota = path == "/v2/admin/resourceQuota/secrets"
        if not (quota or path.startswith("/v2/admin/secrets")):
            return error(404, "NotFound", "no such endpoint")
        # [spec] BckndtokenHeader; default BckndCommonError ("HTTP status codes 401, 403 or 500")
        if not self._authorized(handler):
            return error(401, "Unauthorized", "the token is missing, expired or revoked")
        if self._faults:
            status, headers = self._faults.pop(0)
            return (*error(status, "Injected", "an injected fault")[:2], headers)
        scope = scope_of(handler.headers)
        if scope is None:
            return error(400, "BadRequest", "these scope headers name no documented scope")
        if quota:
            if handler.command != "GET":
                return error(405, "MethodNotAllowed", "not allowed here")
            return self._quota(scope, parse_qs(query))
        name = unquote(path.removeprefix("/v2/admin/secrets").strip("/"))
        secrets = self._secrets.setdefault(scope, {})
        method = handler.command
        if not name:
            if method == "GET":
                return self._list(scope, secrets, parse_qs(query))
            if method == "POST":
                return self._create(scope, secrets, json_body(body))
            return error(405, "MethodNotAllowed", "not allowed here")
        if name not in secrets:  # [spec] 404 BckndNotFound on /admin/secrets/{secretName}
            return error(404, "NotFound", f"secret {name} not found")
        if method == "GET":
            return 200, self._details(scope, name, secrets[name]), {}
        if method == "PATCH":
            return self._update(scope, name, secrets[name], json_body(body))
        if method == "DELETE":  # [spec] 200 "The secret has been removed", no body
            del secrets[name]
            return 200, None, {}
        return error(405, "MethodNotAllowed", "not allowed here")

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        return handler.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    def _token(self, body: bytes, certified: bool) -> tuple[int, Any, dict[str, str]]:
        # [docs] Credentials: POST <url>/oauth/token, grant_type=client_credentials with the
        # client id and secret (X.509: the client certificate over mutual TLS, no secret)
        # -> {access_token, expires_in}; [RFC 6749] 5.2: invalid_client
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        # a client secret in the form, or (X.509) the client certificate and no secret
        secret = None if certified else self.client_secret
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            secret,
        ) or form.get("grant_type") != "client_credentials":
            return 401, {"error": "invalid_client"}, {}
        token = f"token-{len(self.tokens) + 1}-{time.monotonic_ns()}"
        self.tokens.append(token)
        return 200, {"access_token": token, "expires_in": self.token_lifetime}, {}

    def _create(
        self, scope: str, secrets: dict[str, _Secret], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        name = body.get("name", "") if isinstance(body, dict) else ""
        # [spec] BckndGenericSecretPostBody.name: 1-252 characters, ^[a-z0-9\-\.]+$
        if not NAME.fullmatch(str(name)):
            return error(400, "BadRequest", "invalid secret name")
        # one secret per name and scope ([spec] /admin/secrets/{secretName} names one); the
        # status of a second create is not published: exists_status (see the class)
        if name in secrets:
            code = "Conflict" if self.exists_status == 409 else "BadRequest"
            return error(self.exists_status, code, f"secret {name} exists already")
        limit = self.quotas.get(scope)
        if limit is not None and len(secrets) >= limit:
            # [docs] Service Plans: "a maximum of five tenant-wide secrets". The status and
            # message at the limit are not published ([spec] lists 400 and the common errors
            # for this POST): a 400 in the API's error object
            message = f"the quota of generic secrets in this scope is reached ({limit})"
            return error(400, "BadRequest", message)
        data, labels, problem = data_and_labels(body, patch=False)
        if problem:
            return error(400, "BadRequest", problem)
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        secrets[name] = _Secret(data or {}, labels or {}, created)
        self._project(scope, name)
        return 200, {"message": "secret has been created", "name": name}, {}

    def _update(
        self, scope: str, name: str, secret: _Secret, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        # [docs] PATCH updates "the data and/or labels provided" (the [spec] marks data required
        # and says it replaces the data: a PATCH of labels alone keeps the data, as the docs say)
        data, labels, problem = data_and_labels(body, patch=True)
        if problem:
            return error(400, "BadRequest", problem)
        if data is not None:
            secret.data = data
        for key, value in (labels or {}).items():  # [docs] an empty value removes a label
            if value:
                secret.labels[key] = value
            else:
                secret.labels.pop(key, None)
        secret.updated = time.monotonic()
        self._project(scope, name)
        return 200, {"message": "The secret has been modified", "name": name}, {}

    def _list(
        self, scope: str, secrets: dict[str, _Secret], query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        # [spec] Bckndtop, Bckndskip: integers, minimum 0 (no default $top: all of them)
        try:
            top = int(query.get("$top", [str(len(secrets))])[0])
            skip = int(query.get("$skip", ["0"])[0])
        except ValueError:
            return error(400, "BadRequest", "$top and $skip must be numbers")
        if top < 0 or skip < 0:
            return error(400, "BadRequest", "$top and $skip must be 0 or more")
        names = sorted(secrets)[skip : skip + top]
        resources = [self._details(scope, name, secrets[name]) for name in names]
        # [spec] Bckndcount: with $count=true, "a count of all the items present on the
        # server"; else (the default) "a count of the items present in the response"
        every = query.get("$count", ["false"])[0].lower() == "true"
        count = len(secrets) if every else len(resources)
        return 200, {"count": count, "resources": resources}, {}

    def _quota(self, scope: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        # [spec] GET /admin/resourceQuota/secrets: "the quota for tenant-scoped or tenant-wide
        # generic secrets" of the scope the headers name, as BckndCommonResourceQuotaResponse
        # {usage: {count}, quota: {maxCount}}; the number is [docs]' (see DEFAULT_QUOTAS)
        limit = self.quotas.get(scope)
        if limit is None:
            message = "no quota of this scope is documented: give FakeAICore(quotas=...) one"
            return error(501, "NotImplemented", message)
        answer: dict[str, Any] = {"quota": {"maxCount": limit}}
        # [spec] BckndquotaOnly: "only the quota of the resource and not the quota usage"
        if query.get("quotaOnly", ["false"])[0].lower() != "true":
            answer["usage"] = {"count": len(self._secrets.get(scope, {}))}
        return 200, answer, {}

    def _details(self, scope: str, name: str, secret: _Secret) -> dict[str, Any]:
        details: dict[str, Any] = {
            "name": name,
            "createdAt": secret.created_at,
            "labels": [{"key": k, "value": v} for k, v in sorted(secret.labels.items())],
        }
        if scope == TENANT_WIDE:  # [docs], [spec] BckndGenericSecretDetails: tenant-wide only
            done = time.monotonic() - secret.updated >= self.replication_delay
            details[self.replication_field] = dict.fromkeys(self.resource_groups, done)
        return details

    # -- projection into volumes -------------------------------------------------------

    def _project(self, scope: str, name: str) -> None:
        for wanted, group, volume in self._projections:
            if wanted == name and scope == group:
                self._write(volume, dict(self._secrets[scope][name].data))

    def _replicate_later(self) -> None:
        """Project tenant-wide secrets into their groups once the delay has passed: once
        per change, one writer at a time (a volume has one kubelet)."""
        with self._lock:
            pending = [
                (name, volume, self._secrets[TENANT_WIDE][name])
                for name, _group, volume in self._projections
                if name in self._secrets.get(TENANT_WIDE, {})
            ]
        for name, volume, secret in pending:
            stamp = (name, id(volume), secret.updated)
            with self._lock:
                if stamp in self._projected:
                    continue
                self._projected.add(stamp)
            delay = self.replication_delay - (time.monotonic() - secret.updated)
            timer = threading.Timer(max(0.0, delay), self._write, (volume, dict(secret.data)))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def _write(self, volume: AtomicVolume, data: dict[str, bytes]) -> None:
        with self._write_lock:
            volume.write(data)
