"""``secretwatch create``, ``list`` and ``delete``: the rest of a generic secret's life.

The same scope options and rules as ``rotate`` and ``status`` (:mod:`secretwatch._cli.aicore`),
the same credentials, and the same handling of values: ``--set`` and ``--set-file`` values
are hidden from the parser and never printed. ``create`` reads the secret first and refuses
one that exists (the API's answer to a second create of a name is not published); ``delete``
requires ``--yes``, on a terminal too: nothing asks, so a script behaves as a person does.
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar

from pydantic import Field, model_validator

from secretwatch._cli.aicore import _Data, _InScope, _run, _Scoped, scope_json
from secretwatch._cli.config import JsonOption
from secretwatch._cli.pairs import pairs, repeated_keys
from secretwatch._read.names import escaped

__all__ = ["Create", "Delete", "ListSecrets"]

_SCOPES = "(--resource-group NAME | --main-tenant | --tenant-wide)"


class Create(_Scoped, _Data, JsonOption):
    """Create a generic secret; refuse one that exists already (rotate changes it).

    Credentials as for rotate. Values are never printed; --set-file keeps them out of the
    process list too. A secret needs data: give --set or --set-file at least once.
    """

    cli_usage: ClassVar[str] = f"secretwatch create [OPTIONS] NAME {_SCOPES}"
    cli_examples: ClassVar[str] = """examples:
  secretwatch create shared-key --tenant-wide --set-file token=/run/token
  secretwatch create my-secret --resource-group default --set user=svc --json"""

    @model_validator(mode="after")
    def _data(self) -> Create:
        if not (self.set or self.set_file):
            raise ValueError("give --set KEY=VALUE or --set-file KEY=PATH: a secret needs data")
        for pair in [*self.set, *self.set_file, *self.label]:
            if "=" not in pair or not pair.partition("=")[0]:
                raise ValueError("--set, --set-file and --label take KEY=VALUE")
        repeated_keys(self.set, self.set_file, self.label)
        return self

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._create))

    def _create(self) -> int:
        from secretwatch.aicore import APIError  # noqa: PLC0415 (the aicore extra)

        data = self.read_data()
        labels = pairs(self.label)
        api, scope = self.connect()
        with api:
            if _exists(api, self.name, scope):
                return _exists_already(self.name, scope)
            try:
                api.create(self.name, data=data, labels=labels or None, scope=scope)
            except APIError as exc:
                if exc.status == 409:  # created in between (SAP's SDK expects a 409)
                    return _exists_already(self.name, scope)
                raise _with_quota(api, scope, exc) from None
        if self.json:
            created = {"name": self.name, "scope": scope_json(scope), "keys": sorted(data)}
            print(json.dumps({**created, "labels": sorted(labels)}, indent=2))
        else:
            print(f"created {self.name} ({scope}): {', '.join(sorted(data))}")
        return 0


class ListSecrets(_InScope, JsonOption):
    """List the generic secrets of a scope: names, creation times, labels, replication.

    Never values (the API returns none).
    """

    cli_usage: ClassVar[str] = f"secretwatch list [OPTIONS] {_SCOPES}"
    cli_examples: ClassVar[str] = """examples:
  secretwatch list --tenant-wide
  secretwatch list --resource-group default --json"""

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._list))

    def _list(self) -> int:

        api, scope = self.connect()
        with api:
            secrets = api.list(scope=scope)
        if self.json:
            listed = [
                {
                    "name": secret.name,
                    "created_at": secret.created_at.isoformat() if secret.created_at else None,
                    "labels": secret.labels,
                    "replication": secret.replication,
                    "replicated": secret.replicated if secret.replication is not None else None,
                }
                for secret in secrets
            ]
            print(json.dumps({"scope": scope_json(scope), "secrets": listed}, indent=2))
            return 0
        if not secrets:
            print(f"no generic secrets ({scope})")
        for secret in sorted(secrets, key=lambda secret: secret.name):
            labels = ", ".join(f"{k}={v}" for k, v in sorted(secret.labels.items()))
            line = f"{secret.name}  replication: {_replication(secret.replication)}"
            print(escaped(f"{line}  labels: {labels or '-'}", backslash=False))
        return 0


class Delete(_Scoped, JsonOption):
    """Delete a generic secret. Requires --yes (nothing asks, on a terminal either)."""

    cli_usage: ClassVar[str] = f"secretwatch delete [OPTIONS] NAME {_SCOPES} --yes"
    cli_examples: ClassVar[str] = """examples:
  secretwatch delete old-key --tenant-wide --yes
  secretwatch delete my-secret --resource-group default --yes --json"""

    yes: bool = Field(default=False, description="delete it: required, as a deletion is final")

    @model_validator(mode="after")
    def _confirmed(self) -> Delete:
        if not self.yes:
            raise ValueError(f"give --yes to delete {self.name}: nothing was deleted")
        return self

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._delete))

    def _delete(self) -> int:

        api, scope = self.connect()
        with api:
            api.delete(self.name, scope=scope)
        if self.json:
            print(json.dumps({"name": self.name, "scope": scope_json(scope), "deleted": True}))
        else:
            print(f"deleted {self.name} ({scope})")
        return 0


def _exists(api: Any, name: str, scope: Any) -> bool:
    """Whether the scope has the secret (a 404 says it has not; other errors are raised)."""
    from secretwatch.aicore import APIError  # noqa: PLC0415 (the aicore extra)

    try:
        api.get(name, scope=scope)
    except APIError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _exists_already(name: str, scope: Any) -> int:
    print(
        f"secretwatch create: {name} exists already ({scope}); nothing was changed "
        "(secretwatch rotate changes a secret)",
        file=sys.stderr,
    )
    return 1


def _with_quota(api: Any, scope: Any, error: Exception) -> Exception:
    """``error`` of a refused create, with the tenant's quota when it is what is full (the
    API's status and message at the limit are not published)."""
    from secretwatch.aicore import AICoreError  # noqa: PLC0415 (the aicore extra)

    if scope.group != "*":
        return error
    try:
        quota = api.quota(scope=scope)
    except AICoreError:
        return error
    if quota.count is None or quota.count < quota.limit:
        return error
    full = f"the tenant has {quota.count} of {quota.limit} tenant-wide secrets"
    return AICoreError(f"{error}; {full}")


def _replication(replication: dict[str, bool] | None) -> str:
    """``-`` (not tenant-wide), ``none reported`` (an empty map), or ``N of M groups``."""
    if replication is None:
        return "-"
    if not replication:
        return "none reported"
    return f"{sum(replication.values())} of {len(replication)} groups"
