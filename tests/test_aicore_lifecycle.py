"""``secretwatch create``, ``list``, ``delete`` and ``--json`` as real processes against the
stand-in API, over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.aicore import APIError, Scope, SecretsAPI
from secretwatch.testing import FakeAICore

from .conftest import aicore_cli

CANARY = "CANARY-lifecycle-93f1"
TENANT_WIDE = Scope.tenant_wide()
DEFAULT = Scope.resource_group("default")


@pytest.fixture
def fake() -> Iterator[FakeAICore]:
    with FakeAICore(resource_groups=("default", "team-b")) as server:
        with SecretsAPI.from_service_key(server.service_key()) as api:
            labels = {"ext.ai.sap.com/team": "payments"}
            api.create("shared-key", data={"token": CANARY}, labels=labels, scope=TENANT_WIDE)
            api.create("rg-key", data={"token": CANARY}, scope=DEFAULT)
        yield server


def secretwatch(fake: FakeAICore, *args: str) -> subprocess.CompletedProcess[str]:
    return aicore_cli(fake.service_key(), *args)


def no_canary(done: subprocess.CompletedProcess[str]) -> None:
    assert CANARY not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_create_makes_a_secret_and_refuses_to_overwrite_one(fake: FakeAICore) -> None:
    """``create`` creates a missing secret; for one that exists it changes nothing, exits 1
    and says so (it reads the secret first: the API's answer to a second create is not
    published)."""
    done = secretwatch(fake, "create", "new-key", "--main-tenant", "--set", f"token={CANARY}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "created new-key (main tenant): token\n"
    assert fake.data("new-key", scope="") == {"token": CANARY.encode()}
    again = secretwatch(fake, "create", "rg-key", "--resource-group", "default", "--set", "t=x")
    assert again.returncode == 1
    assert "rg-key exists already (resource group default); nothing was changed" in again.stderr
    assert fake.data("rg-key", scope="default") == {"token": CANARY.encode()}
    assert [r.method for r in fake.requests if r.path == "/v2/admin/secrets"] == ["POST"] * 3
    no_canary(done)
    no_canary(again)


def test_create_at_the_tenant_wide_limit_says_the_quota(fake: FakeAICore) -> None:
    """A create refused at the limit of five tenant-wide secrets names the quota."""
    with SecretsAPI.from_service_key(fake.service_key()) as api:
        for number in range(4):
            api.create(f"shared-{number}", data={"k": "v"}, scope=TENANT_WIDE)
    done = secretwatch(fake, "create", "sixth", "--tenant-wide", "--set", f"token={CANARY}")
    assert done.returncode == 1
    assert "the tenant has 5 of 5 tenant-wide secrets" in done.stderr
    no_canary(done)


def test_list_shows_names_labels_and_replication_never_values(fake: FakeAICore) -> None:
    """``list`` (text and JSON) names each secret of the scope with its labels and a
    replication summary, and never a value."""
    text = secretwatch(fake, "list", "--tenant-wide")
    assert text.returncode == 0, text.stderr
    assert text.stdout == (
        "shared-key  replication: 2 of 2 groups  labels: ext.ai.sap.com/team=payments\n"
    )
    as_json = json.loads(secretwatch(fake, "list", "--resource-group", "default", "--json").stdout)
    assert as_json["scope"] == {
        "tenant_wide": False,
        "main_tenant": False,
        "resource_group": "default",
    }
    assert [(s["name"], s["replication"]) for s in as_json["secrets"]] == [("rg-key", None)]
    empty = secretwatch(fake, "list", "--main-tenant")
    assert empty.stdout == "no generic secrets (main tenant)\n"
    no_canary(text)


def test_delete_requires_yes(fake: FakeAICore) -> None:
    """Without ``--yes`` nothing is deleted and the exit status is 2; with it, the secret
    is gone."""
    refused = secretwatch(fake, "delete", "rg-key", "--resource-group", "default")
    assert refused.returncode == 2
    assert "give --yes to delete rg-key: nothing was deleted" in refused.stderr
    assert not [r for r in fake.requests if r.method == "DELETE"]
    done = secretwatch(fake, "delete", "rg-key", "--resource-group", "default", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "deleted rg-key (resource group default)\n"
    with SecretsAPI.from_service_key(fake.service_key()) as api, pytest.raises(APIError) as info:
        api.get("rg-key", scope=DEFAULT)
    assert info.value.status == 404


def test_every_aicore_command_prints_json(fake: FakeAICore, tmp_path: Path) -> None:
    """``--json`` makes each command print one JSON document, without values."""
    value = tmp_path / "value"
    value.write_text(CANARY)
    runs = {
        "rotate": ["rotate", "shared-key", "--tenant-wide", f"--set-file=token={value}", "--wait"],
        "create": ["create", "made", "--resource-group", "default", "--set", f"k={CANARY}"],
        "status": ["status", "shared-key", "--tenant-wide"],
        "list": ["list", "--tenant-wide"],
        "delete": ["delete", "made", "--resource-group", "default", "--yes"],
    }
    answers = {}
    for command, args in runs.items():
        done = secretwatch(fake, *args, "--json")
        assert done.returncode == 0, (command, done.stderr)
        no_canary(done)
        answers[command] = json.loads(done.stdout)
    assert answers["rotate"]["keys"] == ["token"]
    assert answers["rotate"]["replication"] == {"default": True, "team-b": True}
    assert answers["create"]["keys"] == ["k"]
    assert answers["status"]["quota"] == {"count": 1, "limit": 5}
    assert [secret["name"] for secret in answers["list"]["secrets"]] == ["shared-key"]
    assert answers["delete"]["deleted"] is True


@pytest.mark.parametrize("command", ["rotate", "create"])
@pytest.mark.parametrize(
    "given",
    [
        ["--set", f"token={CANARY}", "--set", f"token={CANARY}-2"],
        ["--set", f"token={CANARY}", "--set-file", "token=/nonexistent"],
        ["--set", "k=v", "--label", "ext.ai.sap.com/a=1", "--label", "ext.ai.sap.com/a=2"],
    ],
    ids=["set-twice", "set-and-set-file", "label-twice"],
)
def test_a_key_given_twice_is_refused(fake: FakeAICore, command: str, given: list[str]) -> None:
    """The same key twice is a usage error (exit 2) naming the key, before any request."""
    done = secretwatch(fake, command, "some-key", "--main-tenant", *given)
    assert done.returncode == 2
    key = "ext.ai.sap.com/a" if "--label" in given else "token"
    assert f"give the key '{key}' more than once" in done.stderr
    changes = [r for r in fake.requests if r.path.startswith("/v2/admin/secrets")]
    assert [r.method for r in changes] == ["POST", "POST"]  # the fixture's
    no_canary(done)


def test_status_shows_the_tenant_wide_quota(fake: FakeAICore) -> None:
    """``status`` of a tenant-wide secret shows the tenant's count and limit of them; of a
    resource-group secret, no quota."""
    text = secretwatch(fake, "status", "shared-key", "--tenant-wide")
    assert text.returncode == 0, text.stderr
    assert "quota:       1 of 5 tenant-wide secrets" in text.stdout
    group = json.loads(
        secretwatch(fake, "status", "rg-key", "--resource-group", "default", "--json").stdout
    )
    assert "quota" not in group
    no_canary(text)


def test_secretwatch_variables_set_the_new_commands_options(
    fake: FakeAICore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SECRETWATCH_TENANT_WIDE``, ``SECRETWATCH_JSON`` and ``SECRETWATCH_YES`` are read by
    list and delete; a misspelt one is refused, naming the closest."""
    monkeypatch.setenv("SECRETWATCH_TENANT_WIDE", "true")
    monkeypatch.setenv("SECRETWATCH_JSON", "true")
    listed = secretwatch(fake, "list")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["scope"]["tenant_wide"] is True
    monkeypatch.setenv("SECRETWATCH_YES", "true")
    assert secretwatch(fake, "delete", "shared-key").returncode == 0
    monkeypatch.delenv("SECRETWATCH_YES")
    monkeypatch.setenv("SECRETWATCH_YESS", "true")
    typo = secretwatch(fake, "delete", "shared-key")
    assert typo.returncode == 2
    assert "SECRETWATCH_YESS" in typo.stderr
    assert "SECRETWATCH_YES" in typo.stderr.replace("SECRETWATCH_YESS", "")


def test_status_escapes_what_the_api_says(fake: FakeAICore) -> None:
    """A label the API holds (anyone with access may have set it) can't draw on the
    terminal or fake a line of ``status``: it is shown escaped."""
    hostile = "payments\x1b[2J\nname:        forged"
    with SecretsAPI.from_service_key(fake.service_key()) as api:
        labels = {"ext.ai.sap.com/team": hostile}
        api.update("shared-key", data={"token": CANARY}, labels=labels, scope=TENANT_WIDE)
    done = secretwatch(fake, "status", "shared-key", "--tenant-wide")
    assert done.returncode == 0, done.stderr
    assert "label:       ext.ai.sap.com/team=payments\\x1b[2J\\nname:        forged" in done.stdout
    assert "\x1b" not in done.stdout
    assert [line for line in done.stdout.splitlines() if line.startswith("name:")] == [
        "name:        shared-key"
    ]
    no_canary(done)


@pytest.mark.parametrize(
    "args",
    [
        ["status", "shared-key", "--tenant-wide"],
        ["list", "--tenant-wide"],
        ["delete", "shared-key", "--tenant-wide", "--yes"],
        ["create", "another-key", "--tenant-wide", "--set", "k=v"],
    ],
)
def test_every_aicore_command_ends_by_its_timeout(fake: FakeAICore, args: list[str]) -> None:
    """``--timeout`` bounds every AI Core command, not only rotate: a storm of 503s ends
    within it (and a margin), exit 1, one line that says the deadline passed."""
    fake.fail_next(503, times=10_000)
    started = time.monotonic()
    done = secretwatch(fake, *args, "--timeout", "2")
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "the deadline passed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert elapsed < 2 + 10  # the interpreter's start, and a busy machine
    no_canary(done)


def test_ctrl_c_during_a_wait_is_one_line() -> None:
    """Ctrl-C (SIGINT) while rotate --wait polls ends it with one line and 130, not a
    traceback."""
    slow = FakeAICore(resource_groups=("default",), replication_delay=3600)
    with slow, SecretsAPI.from_service_key(slow.service_key()) as api:
        api.create("slow-key", data={"token": CANARY}, scope=TENANT_WIDE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AICORE_")}
        env |= {"AICORE_SERVICE_KEY": json.dumps(slow.service_key()), "AICORE_HOME": "/nonexistent"}
        command = [sys.executable, "-m", "secretwatch", "rotate", "slow-key", "--tenant-wide"]
        command += ["--set", f"token={CANARY}-2", "--wait", "--poll-interval", "0.05"]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as process:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("updated slow-key")  # now waiting
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert CANARY not in out + err


def test_status_says_when_no_resource_group_is_reported() -> None:
    """An empty replication map (a tenant without resource groups) is said in status's
    text, as list says it, not left out."""
    with FakeAICore(resource_groups=()) as empty:
        with SecretsAPI.from_service_key(empty.service_key()) as api:
            api.create("lonely-key", data={"token": CANARY}, scope=TENANT_WIDE)
        done = aicore_cli(empty.service_key(), "status", "lonely-key", "--tenant-wide")
    assert done.returncode == 0, done.stderr
    assert "replication: none reported (the tenant has no resource group)" in done.stdout
    no_canary(done)


def test_rotate_json_says_updated_when_the_wait_then_fails() -> None:
    """``rotate --wait --json`` whose wait fails after the update was applied still prints
    the document (``updated: true``, ``replicated: false``) before its one-line error: a
    script learns the secret changed."""
    with FakeAICore(resource_groups=()) as empty:  # nothing to replicate into
        with SecretsAPI.from_service_key(empty.service_key()) as api:
            api.create("lonely-key", data={"token": CANARY}, scope=TENANT_WIDE)
        done = aicore_cli(
            empty.service_key(),
            "rotate",
            "lonely-key",
            "--tenant-wide",
            "--set",
            f"token={CANARY}-2",
            "--wait",
            "--json",
        )
        assert empty.data("lonely-key", scope="*") == {"token": f"{CANARY}-2".encode()}
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert (document["updated"], document["replicated"]) == (True, False)
    assert "no resource group" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    no_canary(done)
