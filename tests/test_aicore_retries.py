"""Retries where they are safe, one deadline for a whole command, and a replication wait
that counts only what it can prove: the secrets client and ``secretwatch rotate`` over real
HTTP against the stand-in API (and a hostile token endpoint) on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from secretwatch.aicore import (
    AICoreError,
    APIError,
    ClientCredentials,
    DeadlineExceededError,
    NoResourceGroupsError,
    ReplicationTimeoutError,
    Scope,
    SecretsAPI,
)
from secretwatch.aicore._client import POLL_INTERVAL
from secretwatch.testing import FakeAICore

from .conftest import TIMEOUT, aicore_cli
from .hostile_api import Answer, HostileAPI

CANARY = "CANARY-retries-7d3b"
RG = Scope.resource_group("default")
TENANT_WIDE = Scope.tenant_wide()
MARGIN = 5.0  # generous: what a deadline may overrun by on a loaded machine (a process start)


class Sleeps(list[float]):
    """Records the delays the client asks for, instead of waiting them out."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeAICore]:
    with FakeAICore(resource_groups=("default", "team-b")) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client(fake: FakeAICore, **options: object) -> SecretsAPI:
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    return SecretsAPI(fake.url, auth, **options)  # type: ignore[arg-type]


def sent(fake: FakeAICore, method: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and r.path.startswith("/v2"))


# -- which requests are retried ------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_idempotent_requests_are_retried_on_busy_and_server_errors(
    fake: FakeAICore, sleeps: Sleeps, method: str, status: int
) -> None:
    """GET, PATCH (the same body twice leaves the same secret) and DELETE answered 429, 500,
    502, 503 or 504 are sent again, with growing waits, and then succeed."""
    with client(fake, sleep=sleeps) as api:
        api.create("retried", data={"k": "v"}, scope=RG)
        fake.fail_next(status, times=2)
        if method == "GET":
            assert api.get("retried", scope=RG).name == "retried"
        elif method == "PATCH":
            api.update("retried", data={"k": CANARY}, scope=RG)
            assert fake.data("retried", scope="default") == {"k": CANARY.encode()}
        else:
            api.delete("retried", scope=RG)
            assert api.list(scope=RG) == []
    assert sent(fake, method) >= 3
    assert len(sleeps) == 2
    assert sleeps[1] >= sleeps[0] / 2  # exponential, with jitter in [delay/2, delay]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_create_that_reached_the_api_is_never_sent_twice(
    fake: FakeAICore, sleeps: Sleeps, status: int
) -> None:
    """A POST answered with any error status is reported, not sent again: a gateway's 502
    or 504 may come after the API created the secret, and a second POST would be refused
    (409) for the secret that the first one made."""
    with client(fake, sleep=sleeps) as api:
        fake.fail_next(status)
        with pytest.raises(APIError) as info:
            api.create("once", data={"k": CANARY}, scope=RG)
    assert info.value.status == status
    assert sleeps == []
    assert sent(fake, "POST") == 1
    assert CANARY not in str(info.value)


def test_a_create_that_never_connected_is_retried(sleeps: Sleeps) -> None:
    """A POST that could not connect was never sent, so it is retried (then reported)."""
    closed = FakeAICore()
    url = closed.url  # bound but never served: connections are refused
    closed.close()
    with FakeAICore() as tokens:  # the token comes (its own retries are the token's)
        key = tokens.service_key()
        auth = ClientCredentials(f"{key['url']}/oauth/token", key["clientid"], key["clientsecret"])
        api = SecretsAPI(url, auth, retries=2, sleep=sleeps)
        with api, pytest.raises(AICoreError, match="ConnectError"):
            api.create("never-sent", data={"k": "v"}, scope=RG)
    assert len(sleeps) == 2


def test_retry_after_is_honoured_for_a_patch(fake: FakeAICore, sleeps: Sleeps) -> None:
    """The wait before a retry is the ``Retry-After`` the API asked for, not the backoff."""
    with client(fake, sleep=sleeps) as api:
        api.create("later", data={"k": "v"}, scope=RG)
        fake.fail_next(503, retry_after=7)
        fake.fail_next(429, retry_after=3)
        api.update("later", data={"k": "w"}, scope=RG)
    assert sleeps == [7.0, 3.0]


def test_no_retry_waits_past_the_retry_time(fake: FakeAICore, sleeps: Sleeps) -> None:
    """Without a deadline, ``retry_time`` bounds a call: a retry whose wait would end after
    it is not made, and the API's answer is reported at once."""
    with client(fake, sleep=sleeps, retry_time=10) as api:
        fake.fail_next(503, retry_after=60)
        with pytest.raises(APIError, match="503"):
            api.list(scope=RG)
    assert sleeps == []


# -- one deadline --------------------------------------------------------------------------


def test_a_retry_after_past_the_deadline_ends_the_call_at_once(
    fake: FakeAICore, sleeps: Sleeps
) -> None:
    """A ``Retry-After`` that would end after the deadline is not waited for: the call ends
    at once, saying which request ran out of time and what it last got."""
    with client(fake, sleep=sleeps) as api:
        api.create("busy", data={"k": "v"}, scope=RG)
        api.deadline = time.monotonic() + 30
        fake.fail_next(429, retry_after=60)
        with pytest.raises(DeadlineExceededError) as info:
            api.update("busy", data={"k": CANARY}, scope=RG)
    assert sleeps == []
    message = str(info.value)
    assert message.startswith("PATCH /v2/admin/secrets/busy: the deadline passed after 1 attempt")
    assert "429" in message
    assert CANARY not in message


def test_the_deadline_ends_a_storm_of_server_errors(fake: FakeAICore) -> None:
    """A storm of 500s, retried with real waits, ends by the deadline with a clear error,
    not after all the retries (here as many as the storm is long)."""
    fake.fail_next(500, times=10_000)
    with client(fake, retries=10_000, backoff=0.05, max_backoff=0.2) as api:
        started = time.monotonic()
        api.deadline = started + 1.0
        with pytest.raises(DeadlineExceededError, match=r"^GET /v2/admin/secrets: the deadline"):
            api.list(scope=RG)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + MARGIN
    assert sent(fake, "GET") > 1


def test_the_deadline_cuts_a_slow_answer(fake: FakeAICore) -> None:
    """An answer that comes after the deadline is not waited for (the request's own timeout
    is longer), and the error says the deadline cut it."""
    with client(fake, timeout=30) as api:
        api.create("slow", data={"k": "v"}, scope=RG)
        fake.delay_next(TIMEOUT)
        started = time.monotonic()
        api.deadline = started + 0.5
        with pytest.raises(DeadlineExceededError, match="ReadTimeout, cut at the deadline"):
            api.get("slow", scope=RG)
        assert time.monotonic() - started < 0.5 + MARGIN


def test_a_token_request_obeys_the_deadline() -> None:
    """A token endpoint that trickles its answer (seconds long) is cut at the client's
    deadline, not at the token request's own 30 s, and the error names it."""
    with HostileAPI() as hostile:
        token = b'{"access_token": "tok", "expires_in": 3600}'
        hostile.answers[("POST", "/oauth/token")] = Answer(body=token, trickle_head=True)
        auth = ClientCredentials(f"{hostile.url}/oauth/token", "c", "s", timeout=30)
        with SecretsAPI(hostile.url, auth, timeout=30) as api:
            started = time.monotonic()
            api.deadline = started + 0.5
            with pytest.raises(DeadlineExceededError) as info:
                api.list(scope=RG)
            elapsed = time.monotonic() - started
    assert elapsed < 0.5 + MARGIN
    assert "POST /oauth/token (a token for GET /v2/admin/secrets)" in str(info.value)
    assert ("GET", "/v2/admin/secrets") not in hostile.paths


def test_rotate_timeout_ends_a_storm_with_one_line(fake: FakeAICore) -> None:
    """``rotate --timeout`` is the whole command's: a storm of 503s on the PATCH ends within
    it (and a margin), exit 1, with one line saying what ran out; no value is shown."""
    with client(fake) as api:
        api.create("shared-key", data={"token": "old"}, scope=TENANT_WIDE)
    fake.fail_next(503, times=10_000)
    started = time.monotonic()
    done = aicore_cli(
        fake.service_key(),
        *("rotate", "shared-key", "--tenant-wide", "--set", f"token={CANARY}"),
        *("--wait", "--timeout", "2"),
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert elapsed < 2 + MARGIN
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "secretwatch: --timeout 2 s ran out while updating shared-key (tenant-wide): "
        "PATCH /v2/admin/secrets/shared-key: the deadline passed after "
    )
    assert "AI Core API error 503" in done.stderr
    assert "Traceback" not in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_rotate_timeout_covers_the_wait(fake: FakeAICore) -> None:
    """The replication wait gets what is left of --timeout, and its error says so."""
    with client(fake) as api:
        api.create("shared-key", data={"token": "old"}, scope=TENANT_WIDE)
    fake.replication_delay = 3600
    done = aicore_cli(
        fake.service_key(),
        *("rotate", "shared-key", "--tenant-wide", "--set", f"token={CANARY}"),
        *("--wait", "--timeout", "1", "--poll-interval", "0.1"),
    )
    assert done.returncode == 1
    assert "updated shared-key (tenant-wide): token" in done.stdout
    assert done.stderr.startswith(
        "secretwatch: --timeout 1 s ran out while waiting for replication: shared-key: "
        "not replicated after "
    )
    assert done.stderr.rstrip().endswith("pending: default, team-b")
    assert CANARY not in done.stdout + done.stderr


# -- what the replication wait proves ------------------------------------------------------


def test_wait_replicated_ignores_a_map_read_before_the_patch_returned(fake: FakeAICore) -> None:
    """A map read while the PATCH is under way is not counted, though it is all true: the
    wait returns only with a read that started after the PATCH returned."""
    fake.replication_delay = 0.2  # shorter than the PATCH's answer takes
    with client(fake) as api:
        api.create("shared-key", data={"token": "old"}, scope=TENANT_WIDE)
        api.wait_replicated("shared-key", timeout=TIMEOUT, interval=0.05)
        fake.delay_next(1.5)  # the PATCH is applied at once, and answered after 1.5 s
        returned = threading.Event()

        def rotate() -> None:
            api.update("shared-key", data={"token": "new"}, scope=TENANT_WIDE)
            returned.set()

        writer = threading.Thread(target=rotate)
        writer.start()
        try:
            assert fake.wait_for_request("PATCH", "/v2/admin/secrets/shared-key", timeout=TIMEOUT)
            reads = sent(fake, "GET")
            secret = api.wait_replicated("shared-key", timeout=TIMEOUT, interval=0.05)
            assert returned.is_set()  # not before the PATCH returned
        finally:
            writer.join(TIMEOUT)
    assert secret.replicated
    # the map read all true before the PATCH returned, and those reads did not count
    assert sent(fake, "GET") - reads > 2


def test_an_empty_replication_map_is_reported_as_such(sleeps: Sleeps) -> None:
    """A tenant without resource groups gives an empty map: the wait says so at once,
    instead of timing out."""
    with FakeAICore(resource_groups=()) as fake, client(fake, sleep=sleeps) as api:
        api.create("lonely", data={"k": "v"}, scope=TENANT_WIDE)
        with pytest.raises(NoResourceGroupsError, match="lists no resource group"):
            api.wait_replicated("lonely", timeout=3600)
    assert sleeps == []


def test_rotate_wait_with_no_resource_group_is_one_line() -> None:
    """``rotate --wait`` for a tenant without resource groups updates, then says there is
    nothing to replicate into (exit 1), without waiting for --timeout."""
    with FakeAICore(resource_groups=()) as fake:
        with client(fake) as api:
            api.create("lonely", data={"k": "v"}, scope=TENANT_WIDE)
        done = aicore_cli(
            fake.service_key(),
            *("rotate", "lonely", "--tenant-wide", "--set", f"k={CANARY}", "--wait"),
        )
    assert done.returncode == 1
    assert "updated lonely (tenant-wide): k" in done.stdout
    assert done.stderr == (
        "secretwatch: lonely: the replication status lists no resource group (the tenant "
        "has none), so there is nothing to replicate into\n"
    )
    assert CANARY not in done.stdout + done.stderr


def test_wait_replicated_refuses_a_scope_that_does_not_replicate(fake: FakeAICore) -> None:
    """Only tenant-wide secrets replicate: waiting in another scope is a mistake, said."""
    with client(fake) as api, pytest.raises(ValueError, match="only tenant-wide secrets"):
        api.wait_replicated("x", scope=RG)


@pytest.mark.parametrize("scope", [["--resource-group", "default"], ["--main-tenant"]])
def test_rotate_wait_is_refused_where_nothing_replicates(
    fake: FakeAICore, scope: list[str]
) -> None:
    """``--wait`` for a resource-group or main-tenant secret is a usage error (exit 2) that
    says why, and nothing is changed."""
    with client(fake) as api:
        api.create("rg-key", data={"token": "old"}, scope=RG)
    done = aicore_cli(
        fake.service_key(), "rotate", "rg-key", *scope, "--set", f"token={CANARY}", "--wait"
    )
    assert done.returncode == 2
    assert "--wait applies to tenant-wide secrets only" in done.stderr
    assert "nothing to wait for" in done.stderr
    assert sent(fake, "PATCH") == 0
    assert fake.data("rg-key", scope="default") == {"token": b"old"}
    assert CANARY not in done.stdout + done.stderr


def test_poll_interval(fake: FakeAICore) -> None:
    """``--poll-interval`` sets how often the status is read: a replication of about a
    second is seen after several reads, not at the next of reads seconds apart; the
    library's default is at most 2 s."""
    assert POLL_INTERVAL <= 2
    with client(fake) as api:
        api.create("shared-key", data={"token": "old"}, scope=TENANT_WIDE)
    fake.replication_delay = 1.0
    done = aicore_cli(
        fake.service_key(),
        *("rotate", "shared-key", "--tenant-wide", "--set", "token=new"),
        *("--wait", "--poll-interval", "0.1"),
    )
    assert done.returncode == 0, done.stderr
    assert "replicated into every resource group: default, team-b" in done.stdout
    assert sent(fake, "GET") >= 4
    bad = aicore_cli(
        fake.service_key(),
        *("rotate", "shared-key", "--tenant-wide", "--set", "token=new"),
        *("--wait", "--poll-interval", "0"),
    )
    assert bad.returncode == 2
    assert "poll-interval" in bad.stderr


def test_a_busy_api_during_the_wait_is_waited_out(fake: FakeAICore, sleeps: Sleeps) -> None:
    """A read of the wait whose retries run out on 503s is one more "not yet", not the end:
    the wait goes on polling, and returns once a read after the update shows replication."""
    with client(fake, retries=1, sleep=sleeps) as api:
        api.create("busy-key", data={"token": CANARY}, scope=TENANT_WIDE)
        api.update("busy-key", data={"token": CANARY + "-2"}, scope=TENANT_WIDE)
        fake.fail_next(503, times=6)  # three reads' worth, each with its one retry
        secret = api.wait_replicated("busy-key", timeout=30, interval=0.01)
    assert secret.replicated
    assert sent(fake, "GET") == 7


def test_a_wait_that_times_out_on_a_busy_api_says_so(fake: FakeAICore, sleeps: Sleeps) -> None:
    """When time runs out while the API keeps answering 503, the timeout names that."""
    with client(fake, retries=0, sleep=sleeps) as api:
        api.create("busy-key", data={"token": CANARY}, scope=TENANT_WIDE)
        fake.fail_next(503, times=10_000)
        with pytest.raises(ReplicationTimeoutError) as info:
            api.wait_replicated("busy-key", timeout=0.3, interval=0.01)
    assert "503" in str(info.value)
    assert CANARY not in str(info.value)
