"""Errors of the AI Core secrets client. None carries a request body or a secret value::

AICoreError                     root
 ├── InvalidSecretError         a name, key, label or value breaks the API's rules
 ├── APIError                   the API answered with an error status
 ├── MalformedResponseError     an answer the API never gives (shape, size, redirect)
 ├── DeadlineExceededError      the client's deadline passed during a request or its retries
 ├── ReplicationTimeoutError    not replicated everywhere in time
 └── NoResourceGroupsError      a replication map that lists no resource group
"""

from __future__ import annotations

__all__ = [
    "AICoreError",
    "APIError",
    "DeadlineExceededError",
    "InvalidSecretError",
    "MalformedResponseError",
    "NoResourceGroupsError",
    "ReplicationTimeoutError",
]


class AICoreError(Exception):
    """Root of the errors of :mod:`secretwatch.aicore`."""


class InvalidSecretError(AICoreError, ValueError):
    """A name, key, label or value breaks the API's rules; found before any request."""


class APIError(AICoreError):
    """The API answered with an error.

    Attributes:
        status: the HTTP status.
        code: the API's error code, if it gave one.
        message: the API's message (it describes the request, never holds its values).
        request_id: the API's request id, for SAP support.
    """

    def __init__(self, status: int, code: str | None, message: str, request_id: str | None):
        detail = f" [{code}]" if code else ""
        request = f" (request id {request_id})" if request_id else ""
        super().__init__(f"AI Core API error {status}{detail}: {message}{request}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class MalformedResponseError(AICoreError):
    """An answer the API never gives: not JSON, not the documented shape, larger than the
    client reads, not complete in time, compressed unasked, or a redirect (never followed:
    the credentials would go with it). Also for the token endpoint's answer.

    The message names the request and the problem (a field and its JSON type), never the
    body or a string from the server: ``GET /v2/admin/secrets/NAME: unexpected answer:
    labels.0 is a string where an object was expected``.

    Attributes:
        method: the request's method.
        path: the endpoint's path (``/v2/admin/secrets/NAME``, ``/oauth/token``); for
            :meth:`Secret.from_api`, ``GenericSecretDetails`` (and ``method`` is empty).
        problem: what was wrong.
    """

    def __init__(self, method: str, path: str, problem: str):
        where = f"{method} {path}" if method else path
        super().__init__(f"{where}: unexpected answer: {problem}")
        self.method = method
        self.path = path
        self.problem = problem


class ReplicationTimeoutError(AICoreError, TimeoutError):
    """A tenant-wide secret was not replicated into every resource group in time.

    Attributes:
        pending: the resource groups not replicated yet at the last read that counted.
        reading: the failure of the read that the time ran out in, if it did.
    """

    def __init__(
        self, name: str, timeout: float, pending: list[str], *, reading: str | None = None
    ):
        groups = ", ".join(pending) or "(no replication status yet)"
        last = f"; the last read: {reading}" if reading else ""
        super().__init__(f"{name}: not replicated after {timeout:g} s; pending: {groups}{last}")
        self.pending = pending
        self.reading = reading


class DeadlineExceededError(AICoreError, TimeoutError):
    """The client's :attr:`~SecretsAPI.deadline` passed during a request or between its
    retries: no further attempt is made.

    Attributes:
        doing: the request that was being made (``PATCH /v2/admin/secrets/NAME``, or the
            token request made for it).
        attempts: how many times it was sent.
        last: what the last attempt got (an error status, or the kind of network failure).
    """

    def __init__(self, doing: str, attempts: int, last: str):
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"{doing}: the deadline passed after {tries}; the last: {last}")
        self.doing = doing
        self.attempts = attempts
        self.last = last


class NoResourceGroupsError(AICoreError):
    """A tenant-wide secret's replication map is empty: the tenant has no resource group,
    so there is nothing to replicate into (waiting would only time out)."""

    def __init__(self, name: str):
        super().__init__(
            f"{name}: the replication status lists no resource group (the tenant has none), "
            "so there is nothing to replicate into"
        )
        self.name = name
