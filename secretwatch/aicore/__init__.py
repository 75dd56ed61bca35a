"""The operator's side of a rotation: update an AI Core generic secret, then wait until it
has replicated. Needs the ``aicore`` extra (httpx).

Examples:
    >>> from secretwatch.aicore import SecretsAPI, Scope  # doctest: +SKIP
    >>> api = SecretsAPI.from_env()  # doctest: +SKIP
    >>> tenant_wide = Scope.tenant_wide()  # doctest: +SKIP
    >>> api.update("shared-key", data={"token": b"new"}, scope=tenant_wide)  # doctest: +SKIP
    >>> api.wait_replicated("shared-key", timeout=300)  # doctest: +SKIP
"""

from secretwatch.aicore._auth import ClientCredentials
from secretwatch.aicore._client import SecretsAPI
from secretwatch.aicore._errors import (
    AICoreError,
    APIError,
    DeadlineExceededError,
    InvalidSecretError,
    MalformedResponseError,
    NoResourceGroupsError,
    ReplicationTimeoutError,
)
from secretwatch.aicore._scope import Scope
from secretwatch.aicore._secret import Quota, Secret

__all__ = [
    "AICoreError",
    "APIError",
    "ClientCredentials",
    "DeadlineExceededError",
    "InvalidSecretError",
    "MalformedResponseError",
    "NoResourceGroupsError",
    "Quota",
    "ReplicationTimeoutError",
    "Scope",
    "Secret",
    "SecretsAPI",
]
