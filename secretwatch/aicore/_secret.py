"""``Secret``: a generic secret as the API describes it (never its values)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from secretwatch.aicore._answers import Details, parse
from secretwatch.aicore._errors import MalformedResponseError

__all__ = ["Quota", "Secret"]


@dataclass(frozen=True, slots=True)
class Quota:
    """The generic-secret quota of a scope.

    Attributes:
        count: how many secrets the scope holds (``None`` if the API did not say).
        limit: the most it may hold (SAP documents five tenant-wide secrets by default).
    """

    count: int | None
    limit: int


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
        """From a ``GenericSecretDetails`` body (either name of the replication field).

        Raises:
            MalformedResponseError: the body is not one; the message names the field.
        """
        where = ("", "GenericSecretDetails")
        return cls._from_details(parse(Details, dict(body), *where), *where)

    @classmethod
    def _from_details(cls, details: Details, method: str, path: str) -> Secret:
        created = None
        if details.createdAt:
            with contextlib.suppress(ValueError):  # its message quotes the server's string
                created = datetime.fromisoformat(details.createdAt)
            if created is None:
                raise MalformedResponseError(method, path, "createdAt is not a date")
        replication = details.resourceGroupSecretReplicationStatus
        if replication is None:
            replication = details.resourceGroupSecretsSyncStatus
        return cls(
            name=details.name,
            created_at=created,
            labels={label.key: label.value or "" for label in details.labels or ()},
            replication=None if replication is None else dict(replication),
        )
