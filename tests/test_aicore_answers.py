"""Answers the AI API never gives (wrong shapes, not JSON, redirects, endless or cut-short
bodies), from a hostile server on 127.0.0.1: one clear line, exit 1, bounded memory."""

from __future__ import annotations

import gzip
import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretwatch.aicore import (
    AICoreError,
    ClientCredentials,
    MalformedResponseError,
    Scope,
    Secret,
    SecretsAPI,
)

from .conftest import TIMEOUT, aicore_cli
from .hostile_api import Answer, HostileAPI, MiB, endless, json_answer

CANARY = "CANARY-answer-7d31"
SECRET = ("GET", "/v2/admin/secrets/shared-key")
TOKEN = ("POST", "/oauth/token")
LIST = ("GET", "/v2/admin/secrets")
RSS_BOUND_MIB = 150  # the CLI's peak memory, whatever the server sends


class Sleeps(list[float]):
    """Records the delays the client asks for, instead of waiting them out."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def hostile() -> Iterator[HostileAPI]:
    with HostileAPI() as server:
        yield server


@pytest.fixture
def api(hostile: HostileAPI) -> Iterator[SecretsAPI]:
    auth = ClientCredentials(f"{hostile.url}/oauth/token", "client", "secret")
    with SecretsAPI(hostile.url, auth, retries=1, sleep=Sleeps()) as client:
        yield client


def secretwatch(hostile: HostileAPI, *args: str) -> subprocess.CompletedProcess[str]:
    return aicore_cli(hostile.service_key(), *args)


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("secretwatch: "), done.stderr
    for phrase in phrases:
        assert phrase in done.stderr
    assert CANARY not in done.stdout + done.stderr


BAD_DETAILS = [
    (json_answer({}), "name is missing"),
    (json_answer([]), "the body is a list where an object was expected"),
    (json_answer("text"), "the body is a string where an object was expected"),
    (json_answer(None), "the body is null where an object was expected"),
    (json_answer({"name": 5}), "name is a number where a string was expected"),
    (
        json_answer({"name": "x", "resourceGroupSecretReplicationStatus": "str"}),
        "resourceGroupSecretReplicationStatus is a string where an object was expected",
    ),
    (
        json_answer({"name": "x", "resourceGroupSecretsSyncStatus": {CANARY: "yes"}}),
        "resourceGroupSecretsSyncStatus has a value that is not true or false",
    ),
    (json_answer({"name": "x", "labels": {"k": "v"}}), "labels is an object where a list"),
    (json_answer({"name": "x", "labels": [CANARY]}), "labels.0 is a string where an object"),
    (json_answer({"name": "x", "labels": [{"value": "v"}]}), "labels.0.key is missing"),
    (json_answer({"name": "x", "createdAt": CANARY}), "createdAt is not a date"),
    (json_answer({"name": "x", "createdAt": 1700000000}), "createdAt is a number where a"),
    (Answer(200, b"<html>" + CANARY.encode()), "not JSON"),
    (Answer(200, b""), "not JSON"),
    (Answer(200, b"[" * 100_000), "not JSON"),
    (Answer(200, b'{"name": "\xff' + CANARY.encode() + b'"}'), "not JSON"),
    (
        Answer(307, b"", {"Location": f"http://127.0.0.2/{CANARY}"}),
        "a redirect (307), not followed",
    ),
    (
        Answer(200, gzip.compress(b'{"name": "x"}'), {"Content-Encoding": "gzip"}),
        "a compressed body (gzip), though none was asked for",
    ),
    (endless(2 * MiB, declared=True), "over 1 MiB"),
]


@pytest.mark.parametrize(("answer", "problem"), BAD_DETAILS)
def test_status_says_what_is_wrong_with_an_answer_in_one_line(
    hostile: HostileAPI, answer: Answer, problem: str
) -> None:
    """Every malformed answer to GET a secret: one line naming the endpoint and the
    problem (never the body), exit 1."""
    hostile.answers[SECRET] = answer
    done = secretwatch(hostile, "status", "shared-key", "--tenant-wide")
    assert_one_clear_line(done, "GET /v2/admin/secrets/shared-key: unexpected answer: ", problem)
    assert hostile.paths.count(SECRET) == 1  # not retried, and no redirect followed
    assert all(path in (SECRET, TOKEN) for path in hostile.paths)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (json_answer([]), "the body is a list where an object was expected"),
        (json_answer({"access_token": 5}), "access_token is a number where a string"),
        (json_answer({"expires_in": 60}), "access_token is missing"),
        (
            json_answer({"access_token": "t", "expires_in": CANARY}),
            "expires_in is a string where a number was expected",
        ),
        (Answer(200, CANARY.encode()), "not JSON"),
        (Answer(302, b"", {"Location": f"http://127.0.0.2/{CANARY}"}), "a redirect (302)"),
        (endless(2 * MiB, declared=False), "over 1 MiB"),
    ],
)
def test_a_malformed_token_answer_is_one_clear_line(
    hostile: HostileAPI, answer: Answer, problem: str
) -> None:
    """The token endpoint's answers are checked as the API's are."""
    hostile.answers[TOKEN] = answer
    done = secretwatch(hostile, "status", "shared-key", "--tenant-wide")
    assert_one_clear_line(done, "POST /oauth/token: unexpected answer: ", problem)
    assert SECRET not in hostile.paths


@pytest.mark.parametrize(
    "answer",
    [
        Answer(404, b"<html>" + CANARY.encode()),
        Answer(404, json.dumps({"error": [CANARY]}).encode()),
        Answer(404, json.dumps({"error": {"message": {"nested": CANARY}}}).encode()),
    ],
)
def test_an_error_without_the_api_s_error_body_is_its_status(
    hostile: HostileAPI, answer: Answer
) -> None:
    """An error status whose body is not the API's error object: the status and its
    standard phrase, nothing of the body or of the server's status line."""
    hostile.answers[SECRET] = answer
    done = secretwatch(hostile, "status", "shared-key", "--tenant-wide")
    assert_one_clear_line(done, "AI Core API error 404: Not Found")
    assert "Hostile" not in done.stderr  # the server's reason phrase


def test_the_api_s_error_message_is_one_short_line(hostile: HostileAPI) -> None:
    """A message of many lines, or of megabytes, is shown as one line of bounded length."""
    message = "first line\nsecond line\r\n\x1b[31m" + "x" * 100_000
    hostile.answers[SECRET] = json_answer(
        {"error": {"code": "Bad\nCode", "message": message, "requestId": ["r"]}}, 400
    )
    done = secretwatch(hostile, "status", "shared-key", "--tenant-wide")
    assert_one_clear_line(done, "AI Core API error 400 [Bad Code]: first line second line")
    assert "\x1b" not in done.stderr
    assert len(done.stderr) < 600


def test_rotate_wait_says_what_is_wrong_with_a_polled_answer(hostile: HostileAPI) -> None:
    """rotate --wait: the update is made, then a malformed replication status ends the
    wait with one line and exit 1."""
    hostile.answers[SECRET] = json_answer(
        {"name": "shared-key", "resourceGroupSecretReplicationStatus": ["default"]}
    )
    done = secretwatch(
        hostile, "rotate", "shared-key", "--tenant-wide", "--set", f"token={CANARY}", "--wait"
    )
    assert_one_clear_line(
        done,
        "GET /v2/admin/secrets/shared-key: unexpected answer: ",
        "resourceGroupSecretReplicationStatus is a list where an object was expected",
    )
    assert "updated shared-key (tenant-wide): token" in done.stdout


def run_measured(hostile: HostileAPI, tmp_path: Path, *args: str) -> tuple[int, str, int]:
    """Run the CLI; its exit code, stderr and peak RSS in KiB (from wait4's rusage)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AICORE_")}
    env["AICORE_SERVICE_KEY"] = json.dumps(hostile.service_key())
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "secretwatch", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
    pidfd = os.pidfd_open(process.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], 60)
        if not ready:
            process.kill()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        os.close(pidfd)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    assert ready, "the CLI did not end within 60 s"
    return process.returncode, stderr_path.read_text(), usage.ru_maxrss


@pytest.mark.parametrize(
    ("route", "where"),
    [
        (SECRET, "GET /v2/admin/secrets/shared-key: unexpected answer: over 1 MiB"),
        (TOKEN, "POST /oauth/token: unexpected answer: over 1 MiB"),
    ],
)
@pytest.mark.parametrize("declared", [False, True])
def test_a_huge_answer_is_refused_with_bounded_memory(
    hostile: HostileAPI, tmp_path: Path, route: tuple[str, str], where: str, declared: bool
) -> None:
    """A body of hundreds of MiB (announced or chunked) is refused after 1 MiB: the CLI's
    peak memory stays far below the body's size."""
    hostile.answers[route] = endless(256 * MiB, declared=declared)
    code, stderr, peak_kib = run_measured(
        hostile, tmp_path, "status", "shared-key", "--tenant-wide"
    )
    assert code == 1, stderr
    assert stderr == f"secretwatch: {where}\n"
    assert peak_kib < RSS_BOUND_MIB * 1024, f"peak RSS {peak_kib // 1024} MiB"


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        (
            {"labels": [1] * 340_000},
            "labels.0 is a number where an object was expected",
        ),
        (
            {"resourceGroupSecretReplicationStatus": {f"{i:x}": 0 for i in range(90_000)}},
            "resourceGroupSecretReplicationStatus has a value that is not true or false",
        ),
    ],
)
def test_a_malformed_answer_costs_one_error_not_one_per_item(
    hostile: HostileAPI, tmp_path: Path, details: dict[str, object], problem: str
) -> None:
    """Within the 1 MiB cap, an answer whose every item is wrong (a third of a million) is
    refused at the first: memory stays bounded (an error per item took 815 MiB)."""
    body = json.dumps({"name": "shared-key", **details}, separators=(",", ":")).encode()
    assert len(body) < MiB
    hostile.answers[SECRET] = Answer(200, body)
    code, stderr, peak_kib = run_measured(
        hostile, tmp_path, "status", "shared-key", "--tenant-wide"
    )
    assert peak_kib < RSS_BOUND_MIB * 1024, f"peak RSS {peak_kib // 1024} MiB"
    assert code == 1, stderr
    assert stderr == (
        f"secretwatch: GET /v2/admin/secrets/shared-key: unexpected answer: {problem}\n"
    )


def test_a_huge_error_body_is_not_read_whole(hostile: HostileAPI, tmp_path: Path) -> None:
    """An error status with an endless body: the status, after reading at most 1 MiB."""
    hostile.answers[SECRET] = Answer(404, endless(256 * MiB, declared=False).body, length=None)
    code, stderr, peak_kib = run_measured(
        hostile, tmp_path, "status", "shared-key", "--tenant-wide"
    )
    assert code == 1, stderr
    assert stderr == "secretwatch: AI Core API error 404: Not Found\n"
    assert peak_kib < RSS_BOUND_MIB * 1024, f"peak RSS {peak_kib // 1024} MiB"


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b'{"name": "shared-key", "labels": [', length=4096),  # cut short
        Answer(200, lambda: [b'{"name": '], length=None, finish=False),  # no last chunk
    ],
)
def test_a_body_cut_short_is_a_transport_error(
    api: SecretsAPI, hostile: HostileAPI, answer: Answer
) -> None:
    """A connection that closes mid-body is retried, then reported in one line."""
    hostile.answers[SECRET] = answer
    with pytest.raises(AICoreError) as info:
        api.get("shared-key", scope=Scope.tenant_wide())
    assert str(info.value) == "GET /v2/admin/secrets/shared-key: RemoteProtocolError"
    assert hostile.paths.count(SECRET) == 2  # one retry


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ({"count": 1, "resources": {}}, "resources is an object where a list was expected"),
        ({"count": "1", "resources": []}, "count is a string where a whole number was expected"),
        ({"count": 1, "resources": [{}]}, "resources.0.name is missing"),
        ([], "the body is a list where an object was expected"),
    ],
)
def test_list_says_what_is_wrong_with_a_page(
    api: SecretsAPI, hostile: HostileAPI, page: Any, problem: str
) -> None:
    """A malformed page of the list: the endpoint and the problem."""
    hostile.answers[LIST] = json_answer(page)
    with pytest.raises(MalformedResponseError) as info:
        api.list(scope=Scope.resource_group("default"))
    assert str(info.value) == f"GET /v2/admin/secrets: unexpected answer: {problem}"
    assert (info.value.method, info.value.path) == LIST
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # pydantic's error quotes the body


def test_list_stops_at_a_bound_of_pages(api: SecretsAPI, hostile: HostileAPI) -> None:
    """A server that claims ever more secrets, page after page, is stopped at a bound."""
    resources = [{"name": f"s{i}"} for i in range(100)]
    hostile.answers[LIST] = json_answer({"count": 10**12, "resources": resources})
    with pytest.raises(MalformedResponseError, match="more than 10000 secrets"):
        api.list(scope=Scope.resource_group("default"))
    assert hostile.paths.count(LIST) == 100


def test_from_api_refuses_a_malformed_body_by_field() -> None:
    """``Secret.from_api`` (public) says which field is wrong, never its value."""
    with pytest.raises(MalformedResponseError) as info:
        Secret.from_api({"name": "x", "createdAt": CANARY})
    assert str(info.value) == "GenericSecretDetails: unexpected answer: createdAt is not a date"
    secret = Secret.from_api(
        {
            "name": "x",
            "createdAt": "2024-05-13T10:45:31Z",
            "labels": [{"key": "ext.ai.sap.com/a", "value": "b"}],
            "resourceGroupSecretsSyncStatus": {"default": True},
        }
    )
    assert secret.labels == {"ext.ai.sap.com/a": "b"}
    assert secret.replicated
    assert secret.created_at is not None
    assert secret.created_at.year == 2024


def test_the_whole_answer_must_come_within_the_timeout(hostile: HostileAPI) -> None:
    """A server that trickles its body, each byte within the read timeout, is cut off once
    the request has taken ``timeout`` seconds in all."""
    hostile.answers[SECRET] = Answer(200, trickle, length=None)
    auth = ClientCredentials(f"{hostile.url}/oauth/token", "client", "secret")
    client = SecretsAPI(hostile.url, auth, retries=0, timeout=1.0)
    with client, pytest.raises(AICoreError) as info:
        client.get("shared-key", scope=Scope.tenant_wide())
    assert str(info.value) == ("GET /v2/admin/secrets/shared-key: ReadTimeout, not done within 1 s")


@pytest.mark.parametrize("endpoint", [SECRET, ("POST", "/oauth/token")])
def test_a_trickling_status_line_is_cut_off_too(
    hostile: HostileAPI, endpoint: tuple[str, str]
) -> None:
    """The status line and headers count against the timeout too: a server that sends them
    a byte at a time (the API's, or the token endpoint's) is cut off once the request has
    taken ``timeout`` seconds in all, not after the whole head arrived."""
    body = b'{"access_token": "tok"}' if endpoint[1] == "/oauth/token" else b"{}"
    hostile.answers[endpoint] = Answer(200, body, trickle_head=True)
    auth = ClientCredentials(f"{hostile.url}/oauth/token", "client", "secret", timeout=1.0)
    client = SecretsAPI(hostile.url, auth, retries=0, timeout=1.0)
    with client, pytest.raises(AICoreError) as info:
        client.get("shared-key", scope=Scope.tenant_wide())
    assert str(info.value).endswith("ReadTimeout, not done within 1 s")


def trickle() -> Iterator[bytes]:
    """The attack: one byte every 0.1 s, for up to TIMEOUT seconds."""
    pause = threading.Event()
    yield b'{"name": "'
    for _ in range(int(TIMEOUT * 10)):
        pause.wait(0.1)
        yield b"a"


def test_an_error_without_an_answer_chains_nothing(hostile: HostileAPI) -> None:
    """A request that got no answer (the token endpoint refuses the connection) raises an
    AICoreError that chains nothing: the exception it handled holds the token request,
    whose form holds the client secret, in its frames."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connections are refused
    auth = ClientCredentials(f"http://127.0.0.1:{port}/oauth/token", "client", CANARY)
    client = SecretsAPI(hostile.url, auth, retries=0, timeout=1.0)
    with client, pytest.raises(AICoreError) as info:
        client.get("shared-key", scope=Scope.tenant_wide())
    assert str(info.value) == (
        "POST /oauth/token (a token for GET /v2/admin/secrets/shared-key): ConnectError"
    )
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
