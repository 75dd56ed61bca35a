"""``secretwatch rotate`` and ``secretwatch status``: the operator's side, from a shell.

Credentials come from the sources SAP's SDK reads, in its order (see
``aicore/_credentials.py``); ``status --explain-credentials`` says which one is used. Secret
values given with ``--set KEY=VALUE`` never reach the parser (see :mod:`._cli.pairs`); they
are never echoed or logged, and ``--set-file KEY=PATH`` keeps them out of ``ps`` too.
``create``, ``list`` and ``delete`` are in :mod:`._cli.lifecycle`, on the same scope
options (:class:`_InScope`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, CliPositionalArg

from secretwatch._cli.config import CLI_CONFIG, JsonOption
from secretwatch._cli.pairs import Pairs, pairs, repeated_keys
from secretwatch._read.names import escaped

__all__ = ["Rotate", "Status", "scope_json"]


class _InScope(BaseSettings):
    """A scope (``list`` takes no secret's name)."""

    model_config = CLI_CONFIG

    resource_group: str | None = Field(
        default=None, description="in this resource group", json_schema_extra={"metavar": "NAME"}
    )
    main_tenant: bool = Field(default=False, description="in the main tenant")
    tenant_wide: bool = Field(
        default=False, description="tenant-wide (replicated into every resource group)"
    )

    timeout: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="seconds the whole command may take: token requests and requests, with "
        "their retries",
        json_schema_extra={"metavar": "SECONDS"},
    )

    @model_validator(mode="after")
    def _one_scope(self) -> _InScope:
        given = [self.resource_group is not None, self.main_tenant, self.tenant_wide]
        if sum(given) > 1:
            raise ValueError(
                "give exactly one of --resource-group RG, --main-tenant and --tenant-wide"
            )
        return self

    def scope(self, found: Any) -> Any:
        """The :class:`Scope` asked for; without a scope flag, the resource group of the
        credentials' resolution ``found`` (``AICORE_RESOURCE_GROUP``, the profile's)."""
        from secretwatch.aicore import Scope  # noqa: PLC0415 (the aicore extra)

        if self.tenant_wide:
            return Scope.tenant_wide()
        if self.main_tenant:
            return Scope.main_tenant()
        if self.resource_group is not None:
            return Scope.resource_group(self.resource_group)
        if found.resource_group is None:
            raise ValueError(
                "give one of --resource-group RG, --main-tenant and --tenant-wide (or set "
                "AICORE_RESOURCE_GROUP, or AICORE_RESOURCE_GROUP in the profile file)"
            )
        print(
            f"secretwatch: resource group {found.resource_group} "
            f"(from {found.resource_group_source}; no scope flag given)",
            file=sys.stderr,
        )
        return Scope.resource_group(found.resource_group)

    def connect(self) -> tuple[Any, Any]:
        """A :class:`SecretsAPI` from the credentials SAP's SDK would find, and the scope
        asked for (see :meth:`scope`)."""
        from secretwatch.aicore import SecretsAPI  # noqa: PLC0415 (the aicore extra)
        from secretwatch.aicore._credentials import resolve  # noqa: PLC0415

        found = resolve()
        api = SecretsAPI.from_credentials(found.credentials)
        api.deadline = time.monotonic() + self.timeout  # the whole command's, from here
        return api, self.scope(found)


class _Scoped(_InScope):
    """A secret and its scope."""

    name: CliPositionalArg[str] = Field(description="the generic secret's name")


class _Data(BaseSettings):
    """``--set``, ``--set-file`` and ``--label``: a secret's data and labels, their values
    kept from the parser (:mod:`._cli.pairs`)."""

    model_config = CLI_CONFIG

    set: Pairs = Field(
        default_factory=list,
        description="a data key and its value (repeatable)",
        json_schema_extra={"metavar": "KEY=VALUE"},
    )
    set_file: Pairs = Field(
        default_factory=list,
        description="a data key and a file holding its value (repeatable)",
        json_schema_extra={"metavar": "KEY=PATH"},
    )
    label: Pairs = Field(
        default_factory=list,
        description="a label, ext.ai.sap.com/NAME=VALUE (repeatable; rotate: an empty value "
        "removes it)",
        json_schema_extra={"metavar": "KEY=VALUE"},
    )

    def read_data(self) -> dict[str, bytes]:
        """The data of ``--set`` and ``--set-file`` (each file read now).

        Raises:
            ValueError: a file can't be read (names the key and the reason, not the path).
        """
        data = {key: value.encode() for key, value in pairs(self.set).items()}
        for key, path in pairs(self.set_file).items():
            try:
                data[key] = Path(path).read_bytes()
            except OSError as exc:
                problem = exc.strerror or type(exc).__name__
                raise ValueError(f"--set-file {key}: {problem}") from None
        return data


class Rotate(_Scoped, _Data, JsonOption):
    """Update a generic secret's data and labels, and with --wait, wait for replication.

    Credentials as SAP's SDK finds them: AICORE_SERVICE_KEY (JSON, or a file), the AICORE_*
    variables, the profile file ($AICORE_HOME/config.json), VCAP_SERVICES (see status
    --explain-credentials). Without a scope flag, the resource group is AICORE_RESOURCE_GROUP
    (or the profile's). Values are never printed; --set-file keeps them out of the process
    list too. The data given replaces the secret's data: give every key.
    """

    cli_usage: ClassVar[str] = (
        "secretwatch rotate [OPTIONS] NAME [--resource-group NAME | --main-tenant | --tenant-wide]"
    )
    cli_examples: ClassVar[str] = """examples:
  secretwatch rotate shared-key --tenant-wide --set-file token=/run/new-token --wait
  secretwatch rotate my-secret --resource-group default --set some-credential=value
  secretwatch rotate shared-key --tenant-wide --label ext.ai.sap.com/rotated=1 --json"""

    wait: bool = Field(
        default=False,
        description="wait until a read made after the update shows every resource group "
        "replicated (tenant-wide only)",
    )
    timeout: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="seconds the whole command may take: token requests, the update with its "
        "retries, and --wait",
        json_schema_extra={"metavar": "SECONDS"},
    )
    poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="seconds between two reads of the replication status, with --wait",
        json_schema_extra={"metavar": "SECONDS"},
    )

    @model_validator(mode="after")
    def _something(self) -> Rotate:
        if not (self.set or self.set_file or self.label):
            raise ValueError("give --set KEY=VALUE, --set-file KEY=PATH or --label KEY=VALUE")
        for pair in [*self.set, *self.set_file, *self.label]:
            if "=" not in pair or not pair.partition("=")[0]:
                raise ValueError("--set, --set-file and --label take KEY=VALUE")
        repeated_keys(self.set, self.set_file, self.label)
        if self.wait and not self.tenant_wide:
            raise ValueError(
                "--wait applies to tenant-wide secrets only: a resource-group or main-tenant "
                "secret is not replicated, so there is nothing to wait for"
            )
        return self

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._rotate))

    def _rotate(self) -> int:
        from secretwatch.aicore import AICoreError, SecretsAPI  # noqa: PLC0415 (the extra)
        from secretwatch.aicore._credentials import resolve  # noqa: PLC0415

        data = self.read_data() if self.set or self.set_file else None
        found = resolve()
        scope = self.scope(found)
        deadline = time.monotonic() + self.timeout  # the whole command's, from here
        api = SecretsAPI.from_credentials(found.credentials)
        with api, self._ran_out("updating", scope):
            api.deadline = deadline
            api.update(self.name, data=data, labels=pairs(self.label) or None, scope=scope)
            keys = ", ".join(sorted(data or {})) or "no data"
            if not self.json:
                print(f"updated {self.name} ({scope}): {keys}", flush=True)
            replication = None
            if self.wait:  # tenant-wide (checked when parsed)
                try:
                    secret = api.wait_replicated(
                        self.name, timeout=self.timeout, interval=self.poll_interval, scope=scope
                    )
                except AICoreError:
                    # the update was applied: a script must learn that, whatever the wait says
                    self._print_json(scope, data, None, replicated=False)
                    raise
                replication = secret.replication
                groups = ", ".join(sorted(secret.replication or {}))
                if not self.json:
                    print(f"replicated into every resource group: {_shown(groups)}")
        self._print_json(scope, data, replication, replicated=True if self.wait else None)
        return 0

    def _print_json(
        self,
        scope: Any,
        data: dict[str, bytes] | None,
        replication: dict[str, bool] | None,
        *,
        replicated: bool | None,
    ) -> None:
        """With --json, the document: what was updated, and (--wait) whether it replicated."""
        if not self.json:
            return
        document = {
            "name": self.name,
            "scope": scope_json(scope),
            "keys": sorted(data or {}),
            "labels": sorted(pairs(self.label)),
            "updated": True,
            "replicated": replicated,
            "replication": replication,
        }
        print(json.dumps(document, indent=2), flush=True)

    @contextlib.contextmanager
    def _ran_out(self, doing: str, scope: Any) -> Iterator[None]:
        """A deadline's error as one line that says it was --timeout's, and what ran out."""
        from secretwatch.aicore import (  # noqa: PLC0415 (the aicore extra)
            AICoreError,
            DeadlineExceededError,
            ReplicationTimeoutError,
        )

        ran_out = f"--timeout {self.timeout:g} s ran out"
        message = ""
        try:
            yield
        except DeadlineExceededError as exc:
            message = f"{ran_out} while {doing} {self.name} ({scope}): {exc}"
        except ReplicationTimeoutError as exc:
            message = f"{ran_out} while waiting for replication: {exc}"
        if message:
            raise AICoreError(message)


class Status(_Scoped, JsonOption):
    """Show a generic secret: creation time, labels, replication status. Never values.

    For a tenant-wide secret, also the tenant's quota of them (how many it has, and the most).
    With --explain-credentials, say where the AI Core credentials come from (the source
    used, the ones not used and why, the resource group used without a scope flag) and check
    that an X.509 certificate and key load; names only, never a value, and no request.
    """

    cli_usage: ClassVar[str] = (
        "secretwatch status [OPTIONS] NAME [--resource-group NAME | --main-tenant | "
        "--tenant-wide]\n       secretwatch status --explain-credentials [--json]"
    )
    cli_examples: ClassVar[str] = """examples:
  secretwatch status shared-key --tenant-wide
  secretwatch status my-secret --resource-group default --json
  secretwatch status --explain-credentials"""

    name: CliPositionalArg[str | None] = Field(  # type: ignore[assignment]
        default=None, description="the generic secret's name"
    )
    explain_credentials: bool = Field(
        default=False,
        description="say which credential source is used and why not the others (no request)",
    )

    @model_validator(mode="after")
    def _name_or_explain(self) -> Status:
        if self.name is None and not self.explain_credentials:
            raise ValueError("give the generic secret's NAME (or --explain-credentials)")
        return self

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._explain if self.explain_credentials else self._status))

    def _explain(self) -> int:
        from secretwatch.aicore._credentials import resolve  # noqa: PLC0415 (the aicore extra)
        from secretwatch.aicore._x509 import client_context  # noqa: PLC0415

        found = resolve()
        certificate = found.credentials.certificate
        if certificate is not None:
            client_context(certificate)  # loads, or says which could not be loaded
        if self.json:
            explained = {
                "source": found.source,
                "method": found.credentials.method,
                "token_url_from": found.token_from,
                "api_url_from": found.api_from,
                "resource_group": found.resource_group,
                "resource_group_from": found.resource_group_source,
                "not_used": list(found.notes),
            }
            print(json.dumps(explained, indent=2))
            return 0
        for line in found.explain():
            print(line)
        if certificate is not None:
            print("  certificate and key: loaded (checked here; no request was sent)")
        return 0

    def _status(self) -> int:

        api, scope = self.connect()
        with api:
            secret = api.get(str(self.name), scope=scope)
            quota, quota_error = _quota(api, scope)
        description: dict[str, Any] = {
            "name": secret.name,
            "created_at": secret.created_at.isoformat() if secret.created_at else None,
            "labels": secret.labels,
            "replication": secret.replication,
            "replicated": secret.replicated if secret.replication is not None else None,
        }
        if scope.group == "*":  # SAP documents a quota of tenant-wide secrets
            description["quota"] = quota
            if quota_error:
                description["quota_error"] = quota_error
        if self.json:
            print(json.dumps(description, indent=2))
            return 0
        print(f"name:        {_shown(secret.name)}")
        print(f"created:     {description['created_at'] or 'unknown'}")
        for key, value in sorted(secret.labels.items()):
            print(f"label:       {_shown(key)}={_shown(value)}")
        if secret.replication == {}:  # as list says it
            print("replication: none reported (the tenant has no resource group)")
        for group, done in sorted((secret.replication or {}).items()):
            print(f"replication: {_shown(group)}: {'done' if done else 'pending'}")
        if quota is not None:
            print(f"quota:       {quota['count']} of {quota['limit']} tenant-wide secrets")
        elif quota_error:
            print(f"quota:       unknown ({_shown(quota_error)})")
        return 0


def _shown(text: str) -> str:
    """``text`` from the API (a name, a label, a message) as a terminal may show it: a
    hostile answer can't draw on it or fake a line (see :func:`escaped`)."""
    return escaped(text, backslash=False)


def scope_json(scope: Any) -> dict[str, Any]:
    """A :class:`Scope` as ``--json`` prints it: the options that name it."""
    tenant_wide, main_tenant = scope.group == "*", scope.group is None
    group = None if tenant_wide or main_tenant else scope.group
    return {"tenant_wide": tenant_wide, "main_tenant": main_tenant, "resource_group": group}


def _quota(api: Any, scope: Any) -> tuple[dict[str, int | None] | None, str | None]:
    """The tenant-wide quota (count and limit) for a tenant-wide scope, else nothing; an
    error reading it is said, not fatal (a role may read secrets but not quotas)."""
    from secretwatch.aicore import AICoreError  # noqa: PLC0415 (the aicore extra)

    if scope.group != "*":
        return None, None
    try:
        quota = api.quota(scope=scope)
    except AICoreError as exc:
        return None, str(exc)
    return {"count": quota.count, "limit": quota.limit}, None


def _run(command: Any) -> int:
    """Run ``command``; an AI Core error is one clear line (exit 1), never a traceback."""
    try:
        from secretwatch.aicore import AICoreError  # noqa: PLC0415 (the aicore extra)
    except ModuleNotFoundError as exc:
        print(
            f"secretwatch: this command needs the aicore extra ({exc.name} is not installed): "
            "pip install 'path/to/secretwatch[aicore]' (a checkout: it is not on PyPI yet)",
            file=sys.stderr,
        )
        return 2
    try:
        return int(command())
    except AICoreError as exc:  # ValueError-based rule errors included
        print(f"secretwatch: {_shown(str(exc))}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a scope without a resource group's name, say
        print(f"secretwatch: {_shown(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback (a request sent may be done)
        print(
            "secretwatch: interrupted (a request already sent may have been applied: "
            "check with secretwatch status)",
            file=sys.stderr,
        )
        return 130
