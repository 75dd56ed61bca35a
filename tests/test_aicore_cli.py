"""``secretwatch rotate`` and ``status`` as real processes against the stand-in API."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.aicore import Scope, SecretsAPI
from secretwatch.testing import FakeAICore

from .conftest import aicore_cli

CANARY = "CANARY-rotate-5a0c"


@pytest.fixture
def fake() -> Iterator[FakeAICore]:
    with FakeAICore(resource_groups=("default", "team-b")) as server:
        api = SecretsAPI.from_service_key(server.service_key())
        with api:
            api.create("shared-key", data={"token": "old"}, scope=Scope.tenant_wide())
            api.create("rg-key", data={"token": "old"}, scope=Scope.resource_group("default"))
        yield server


def secretwatch(fake: FakeAICore, *args: str) -> subprocess.CompletedProcess[str]:
    return aicore_cli(fake.service_key(), *args)


@pytest.mark.smoke
def test_rotate_and_wait_for_replication(fake: FakeAICore, tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(b"\x00" + CANARY.encode())
    tricky = f'{CANARY},with="commas",[1]'  # commas and JSON-like text stay as they are
    done = secretwatch(
        fake,
        "rotate",
        "shared-key",
        "--tenant-wide",
        "--set",
        f"token={tricky}",
        f"--set-file=key.pem={key_file}",
        "--label",
        "ext.ai.sap.com/rotated-by=ci",
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    assert fake.data("shared-key", scope="*") == {
        "token": tricky.encode(),
        "key.pem": b"\x00" + CANARY.encode(),
    }
    assert "updated shared-key (tenant-wide): key.pem, token" in done.stdout
    assert "replicated into every resource group: default, team-b" in done.stdout
    assert CANARY not in done.stdout + done.stderr


def test_rotate_wait_times_out_clearly(fake: FakeAICore) -> None:
    fake.replication_delay = 3600
    done = secretwatch(
        fake,
        "rotate",
        "shared-key",
        "--tenant-wide",
        "--set",
        f"token={CANARY}",
        "--wait",
        "--timeout",
        "0.2",
    )
    assert done.returncode == 1
    assert "--timeout 0.2 s ran out while waiting for replication" in done.stderr
    assert "shared-key: not replicated after " in done.stderr
    assert "; pending: default, team-b" in done.stderr
    assert "Traceback" not in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_rotate_in_a_resource_group(fake: FakeAICore) -> None:
    done = secretwatch(
        fake, "rotate", "rg-key", "--resource-group", "default", "--set", f"token={CANARY}"
    )
    assert done.returncode == 0, done.stderr
    assert fake.data("rg-key", scope="default") == {"token": CANARY.encode()}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["rotate", "shared-key", "--set", "k=v"],
            2,
            "give one of --resource-group RG, --main-tenant and --tenant-wide (or set "
            "AICORE_RESOURCE_GROUP",
        ),
        (
            ["rotate", "shared-key", "--tenant-wide", "--main-tenant", "--set", "k=v"],
            2,
            "give exactly one of",
        ),
        (["rotate", "shared-key", "--tenant-wide"], 2, "give --set KEY=VALUE"),
        (["rotate", "shared-key", "--tenant-wide", "--set", CANARY], 2, "take KEY=VALUE"),
        (["rotate", "Bad_Name", "--tenant-wide", "--set", "k=v"], 1, "secret name"),
        (["rotate", "missing", "--tenant-wide", "--set", "k=v"], 1, "404"),
        (
            ["rotate", "shared-key", "--tenant-wide", "--label", "team=a"],
            1,
            "only ext.ai.sap.com/ labels",
        ),
    ],
)
def test_mistakes_are_one_clear_line(
    fake: FakeAICore, args: list[str], code: int, message: str
) -> None:
    done = secretwatch(fake, *args)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_status(fake: FakeAICore) -> None:
    fake.replication_delay = 3600
    secretwatch(fake, "rotate", "shared-key", "--tenant-wide", "--set", "token=new")
    done = secretwatch(fake, "status", "shared-key", "--tenant-wide", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["replication"] == {"default": False, "team-b": False}
    assert status["replicated"] is False
    text = secretwatch(fake, "status", "shared-key", "--tenant-wide").stdout
    assert "replication: default: pending" in text
    assert "new" not in text


def test_a_value_is_not_echoed_by_a_usage_error(fake: FakeAICore) -> None:
    """``--set KEY VALUE`` (a space, not '='): the parser's error does not quote VALUE, nor
    a character of it, though it starts with a dash as an option does."""
    done = secretwatch(
        fake, "rotate", "rg-key", "--resource-group", "default", "--set", "token", f"-{CANARY}"
    )
    assert done.returncode == 2
    assert "an unknown option that starts with a single dash (not shown" in done.stderr
    assert "write a value that starts with - as --option=VALUE" in done.stderr
    assert "-C" not in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_unprefixed_variables_are_not_options(
    fake: FakeAICore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI job's RESOURCE_GROUP or WAIT is not taken for --resource-group or --wait."""
    monkeypatch.setenv("RESOURCE_GROUP", "default")
    monkeypatch.setenv("WAIT", "true")
    done = secretwatch(fake, "status", "shared-key", "--tenant-wide")
    assert done.returncode == 0, done.stderr
    assert "replication:" in done.stdout


def test_tls_certificates_that_cant_be_loaded_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSL_CERT_FILE that can't be loaded is one line naming the variable and its file
    (exit 2), not a traceback, and no credential of the service key is shown."""
    missing = tmp_path / "missing.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    service_key = {
        "clientid": "client",
        "clientsecret": CANARY,
        "url": "https://auth.invalid",
        "serviceurls": {"AI_API_URL": "https://api.invalid"},
    }
    done = aicore_cli(service_key, "status", "shared-key", "--tenant-wide")
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr
        == f"secretwatch: SSL_CERT_FILE={missing} cannot be loaded (No such file or directory)\n"
    )
    assert CANARY not in done.stdout + done.stderr
