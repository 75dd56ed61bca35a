"""A stand-in for the AI Core generic secrets API on 127.0.0.1, for tests and the demo.

It implements the documented contract: the OAuth token endpoint, ``/v2/admin/secrets``
with its scopes (``AI-Resource-Group``, ``AI-Tenant-Scope``), the name and label rules,
error bodies, paging, and a replication map of tenant-wide secrets that turns true after
``replication_delay`` seconds. Each accepted change can be projected into a local volume,
written as the kubelet writes it. Faults (429, 503, ...) can be queued for the next
requests; every request is recorded (without its body) for assertions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from secretwatch.testing._volume import AtomicVolume

__all__ = ["FakeAICore", "RecordedRequest"]

_NAME = re.compile(r"[a-z0-9\-.]{1,252}")
_LABEL_KEY = re.compile(r"ext\.ai\.sap\.com/(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]){1,48}")
_FIXED = {"ext.ai.sap.com/document-grounding", "ext.ai.sap.com/documentRepositoryType"}
_TENANT_WIDE = "*"
_MAIN = ""


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
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.resource_groups = resource_groups
        self.replication_delay = replication_delay
        self.replication_field = replication_field
        self.token_lifetime = token_lifetime
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
        for timer in self._timers:
            timer.cancel()
            if timer.is_alive():
                timer.join()

    def service_key(self) -> dict[str, Any]:
        """A service key for this server, as AI Core hands one out."""
        return {
            "clientid": self.client_id,
            "clientsecret": self.client_secret,
            "url": self.url,
            "serviceurls": {"AI_API_URL": self.url},
        }

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
            return self._token(body)
        if path == "/v2/admin/resourceQuota/secrets":
            if self._authorized(handler):
                count = sum(len(secrets) for secrets in self._secrets.values())
                return 200, {"usage": {"count": count}, "quota": {"maxCount": 5}}, {}
            return _error(401, "Unauthorized", "the token is missing, expired or revoked")
        if not path.startswith("/v2/admin/secrets"):
            return _error(404, "NotFound", "no such endpoint")
        if not self._authorized(handler):
            return _error(401, "Unauthorized", "the token is missing, expired or revoked")
        if self._faults:
            status, headers = self._faults.pop(0)
            return (*_error(status, "Injected", "an injected fault")[:2], headers)
        scope = _scope(handler.headers)
        if scope is None:
            return _error(400, "BadRequest", "a scope header is missing")
        name = unquote(path.removeprefix("/v2/admin/secrets").strip("/"))
        secrets = self._secrets.setdefault(scope, {})
        method = handler.command
        if not name:
            if method == "GET":
                return self._list(scope, secrets, parse_qs(query))
            if method == "POST":
                return self._create(scope, secrets, _json(body))
            return _error(405, "MethodNotAllowed", "not allowed here")
        if name not in secrets:
            return _error(404, "NotFound", f"secret {name} not found")
        if method == "GET":
            return 200, self._details(scope, name, secrets[name]), {}
        if method == "PATCH":
            return self._update(scope, name, secrets[name], _json(body))
        if method == "DELETE":
            del secrets[name]
            return 200, None, {}
        return _error(405, "MethodNotAllowed", "not allowed here")

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        return handler.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    def _token(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ) or form.get("grant_type") != "client_credentials":
            return 401, {"error": "invalid_client"}, {}
        token = f"token-{len(self.tokens) + 1}-{time.monotonic_ns()}"
        self.tokens.append(token)
        return 200, {"access_token": token, "expires_in": self.token_lifetime}, {}

    def _create(
        self, scope: str, secrets: dict[str, _Secret], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        name = body.get("name", "") if isinstance(body, dict) else ""
        if not _NAME.fullmatch(str(name)):
            return _error(400, "BadRequest", "invalid secret name")
        if name in secrets:
            return _error(409, "Conflict", f"secret {name} exists already")
        data, labels, problem = _data_and_labels(body, patch=False)
        if problem:
            return _error(400, "BadRequest", problem)
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        secrets[name] = _Secret(data or {}, labels or {}, created)
        self._project(scope, name)
        return 200, {"message": "secret has been created", "name": name}, {}

    def _update(
        self, scope: str, name: str, secret: _Secret, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        data, labels, problem = _data_and_labels(body, patch=True)
        if problem:
            return _error(400, "BadRequest", problem)
        if data is not None:
            secret.data = data
        for key, value in (labels or {}).items():
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
        try:
            top = int(query.get("$top", ["10000"])[0])
            skip = int(query.get("$skip", ["0"])[0])
        except ValueError:
            return _error(400, "BadRequest", "$top and $skip must be numbers")
        names = sorted(secrets)[skip : skip + top]
        resources = [self._details(scope, name, secrets[name]) for name in names]
        return 200, {"count": len(secrets), "resources": resources}, {}

    def _details(self, scope: str, name: str, secret: _Secret) -> dict[str, Any]:
        details: dict[str, Any] = {
            "name": name,
            "createdAt": secret.created_at,
            "labels": [{"key": k, "value": v} for k, v in sorted(secret.labels.items())],
        }
        if scope == _TENANT_WIDE:
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
                (name, volume, self._secrets[_TENANT_WIDE][name])
                for name, _group, volume in self._projections
                if name in self._secrets.get(_TENANT_WIDE, {})
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


def _scope(headers: Any) -> str | None:
    tenant = headers.get("AI-Tenant-Scope", "").lower() == "true"
    group = headers.get("AI-Resource-Group")
    if tenant:
        return _TENANT_WIDE if group == "*" else (_MAIN if group is None else None)
    return None if group in (None, "", "*") else group  # "*" needs AI-Tenant-Scope


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


def _data_and_labels(  # noqa: PLR0911 (one return per rule)
    body: Any, *, patch: bool
) -> tuple[dict[str, bytes] | None, dict[str, str] | None, str]:
    if not isinstance(body, dict):
        return None, None, "the body is not a JSON object"
    data = None
    if "data" in body:
        try:
            data = {str(k): base64.b64decode(v, validate=True) for k, v in body["data"].items()}
        except (binascii.Error, ValueError, AttributeError, TypeError):
            return None, None, "data values must be base64"
    elif not patch:
        return None, None, "data is required"
    labels = None
    if "labels" in body:
        labels = {}
        for item in body["labels"]:
            key, value = str(item.get("key", "")), str(item.get("value", ""))
            if len(key) > 63 or not _LABEL_KEY.fullmatch(key):
                return None, None, "a label key breaks the rules"
            if patch and key in _FIXED:
                return None, None, "this label can't be updated"
            if len(value) > 5000:
                return None, None, "a label value is too long"
            labels[key] = value
    return data, labels, ""


def _error(status: int, code: str, message: str) -> tuple[int, Any, dict[str, str]]:
    body = {"error": {"code": code, "message": message, "requestId": f"req-{time.time_ns()}"}}
    return status, body, {}
