"""``secretwatch rotate`` and ``secretwatch status``: the operator's side, from a shell.

Credentials come from ``AICORE_*`` variables (see :meth:`SecretsAPI.from_env`). Secret
values given with ``--set KEY=VALUE`` are taken out of the arguments before pydantic-settings
parses them (its list parsing splits at commas and reads JSON, which would mangle a value,
and its errors quote what they parse): the parser only ever sees ``@0``, ``@1``... The
values are never echoed or logged; ``--set-file KEY=PATH`` keeps them out of ``ps`` too.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, CliPositionalArg, NoDecode

from secretwatch._cli.config import CLI_CONFIG, JsonOption

__all__ = ["Rotate", "Status", "hidden_values", "hide_values"]

# the values of --set, --set-file and --label, in order; the parser sees "@<index>"
_hidden: ContextVar[tuple[str, ...]] = ContextVar("hidden_values", default=())
_HIDDEN_OPTIONS = ("--set", "--set-file", "--label")


def hide_values(args: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """Replace the values of ``--set``, ``--set-file`` and ``--label`` by ``@<index>``."""
    shown: list[str] = []
    hidden: list[str] = []
    arguments = iter(args)
    for argument in arguments:
        option, equals, inline = argument.partition("=")
        if option in _HIDDEN_OPTIONS:
            value = inline if equals else next(arguments, None)
            if value is None:
                shown.append(argument)
                continue
            shown += [option, f"@{len(hidden)}"]
            hidden.append(value)
        else:
            shown.append(argument)
    return shown, tuple(hidden)


def _restore(value: Any) -> Any:
    """``"@0,@1"`` (as the parser passes a list) -> the hidden values."""
    hidden = _hidden.get()
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list):
        return value
    restored = []
    for part in parts:
        index = part[1:] if isinstance(part, str) and part.startswith("@") else ""
        if not (index.isdigit() and int(index) < len(hidden)):  # "@0" from the environment
            raise ValueError("give KEY=VALUE on the command line")
        restored.append(hidden[int(index)])
    return restored


Pairs = Annotated[list[str], NoDecode, BeforeValidator(_restore)]


class _Scoped(BaseSettings):
    """A secret and its scope."""

    model_config = CLI_CONFIG

    name: CliPositionalArg[str] = Field(description="the generic secret's name")
    resource_group: str | None = Field(
        default=None, description="in this resource group", json_schema_extra={"metavar": "NAME"}
    )
    main_tenant: bool = Field(default=False, description="in the main tenant")
    tenant_wide: bool = Field(
        default=False, description="tenant-wide (replicated into every resource group)"
    )

    @model_validator(mode="after")
    def _one_scope(self) -> _Scoped:
        given = [self.resource_group is not None, self.main_tenant, self.tenant_wide]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of --resource-group RG, --main-tenant and --tenant-wide"
            )
        return self

    def scope(self) -> Any:
        """The :class:`Scope` asked for."""
        from secretwatch.aicore import Scope  # noqa: PLC0415 (the aicore extra)

        if self.tenant_wide:
            return Scope.tenant_wide()
        if self.main_tenant:
            return Scope.main_tenant()
        return Scope.resource_group(str(self.resource_group))


class Rotate(_Scoped):
    """Update a generic secret's data and labels, and with --wait, wait for replication.

    Credentials from AICORE_SERVICE_KEY (JSON, or a file), or AICORE_AUTH_URL,
    AICORE_CLIENT_ID, AICORE_CLIENT_SECRET and AICORE_BASE_URL. Values are never printed;
    --set-file keeps them out of the process list too. The data given replaces the secret's
    data: give every key.
    """

    cli_usage: ClassVar[str] = (
        "secretwatch rotate [OPTIONS] NAME (--resource-group NAME | --main-tenant | --tenant-wide)"
    )
    cli_examples: ClassVar[str] = """examples:
  secretwatch rotate shared-key --tenant-wide --set-file token=/run/new-token --wait
  secretwatch rotate my-secret --resource-group default --set some-credential=value"""

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
        description="a label, ext.ai.sap.com/NAME=VALUE; an empty value removes it (repeatable)",
        json_schema_extra={"metavar": "KEY=VALUE"},
    )
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
        if self.wait and not self.tenant_wide:
            raise ValueError(
                "--wait applies to tenant-wide secrets only: a resource-group or main-tenant "
                "secret is not replicated, so there is nothing to wait for"
            )
        return self

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._rotate))

    def _rotate(self) -> int:
        from secretwatch.aicore import SecretsAPI  # noqa: PLC0415 (the aicore extra)

        data: dict[str, bytes] | None = None
        if self.set or self.set_file:
            data = {key: value.encode() for key, value in _pairs(self.set).items()}
            for key, path in _pairs(self.set_file).items():
                try:
                    data[key] = Path(path).read_bytes()
                except OSError as exc:
                    print(f"secretwatch rotate: --set-file {key}: {exc.strerror}", file=sys.stderr)
                    return 2
        scope = self.scope()
        deadline = time.monotonic() + self.timeout  # the whole command's, from here
        with SecretsAPI.from_env() as api, self._ran_out("updating", scope):
            api.deadline = deadline
            api.update(self.name, data=data, labels=_pairs(self.label) or None, scope=scope)
            keys = ", ".join(sorted(data or {})) or "no data"
            print(f"updated {self.name} ({scope}): {keys}", flush=True)
            if self.wait:  # tenant-wide (checked when parsed)
                secret = api.wait_replicated(
                    self.name, timeout=self.timeout, interval=self.poll_interval, scope=scope
                )
                groups = ", ".join(sorted(secret.replication or {}))
                print(f"replicated into every resource group: {groups}")
        return 0

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
    """Show a generic secret: creation time, labels, replication status. Never values."""

    cli_usage: ClassVar[str] = (
        "secretwatch status [OPTIONS] NAME (--resource-group NAME | --main-tenant | --tenant-wide)"
    )
    cli_examples: ClassVar[str] = """examples:
  secretwatch status shared-key --tenant-wide
  secretwatch status my-secret --resource-group default --json"""

    def cli_cmd(self) -> None:
        raise SystemExit(_run(self._status))

    def _status(self) -> int:
        from secretwatch.aicore import SecretsAPI  # noqa: PLC0415 (the aicore extra)

        with SecretsAPI.from_env() as api:
            secret = api.get(self.name, scope=self.scope())
        description = {
            "name": secret.name,
            "created_at": secret.created_at.isoformat() if secret.created_at else None,
            "labels": secret.labels,
            "replication": secret.replication,
            "replicated": secret.replicated if secret.replication is not None else None,
        }
        if self.json:
            print(json.dumps(description, indent=2))
            return 0
        print(f"name:        {secret.name}")
        print(f"created:     {description['created_at'] or 'unknown'}")
        for key, value in sorted(secret.labels.items()):
            print(f"label:       {key}={value}")
        if secret.replication is not None:
            for group, done in sorted(secret.replication.items()):
                print(f"replication: {group}: {'done' if done else 'pending'}")
        return 0


def _pairs(pairs: list[str]) -> dict[str, str]:
    return dict(pair.partition("=")[::2] for pair in pairs)


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
        print(f"secretwatch: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a scope without a resource group's name, say
        print(f"secretwatch: {exc}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def hidden_values(hidden: tuple[str, ...]) -> Iterator[None]:
    """Make ``hidden`` the values that ``@<index>`` stands for, while parsing."""
    token = _hidden.set(hidden)
    try:
        yield
    finally:
        _hidden.reset(token)
