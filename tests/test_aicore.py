"""The AI Core secrets client against the stand-in API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.aicore import (
    AICoreError,
    APIError,
    ClientCredentials,
    InvalidSecretError,
    ReplicationTimeoutError,
    Scope,
    SecretsAPI,
)
from secretwatch.testing import FakeAICore

CANARY = "CANARY-aicore-62e1"
RG = Scope.resource_group("default")


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


@pytest.fixture
def api(fake: FakeAICore, sleeps: Sleeps) -> Iterator[SecretsAPI]:
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    with SecretsAPI(fake.url, auth, sleep=sleeps) as client:
        yield client


def api_requests(fake: FakeAICore) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.path.startswith("/v2")]


@pytest.mark.smoke
def test_create_get_update_list_delete(api: SecretsAPI, fake: FakeAICore) -> None:
    api.create(
        "my-generic-secret",
        data={"some-credential": b"\x00raw bytes", "text-key": "text"},
        labels={"ext.ai.sap.com/owner": "team-a"},
        scope=RG,
    )
    assert fake.data("my-generic-secret", scope="default") == {
        "some-credential": b"\x00raw bytes",  # base64 on the wire, raw in the store
        "text-key": b"text",
    }
    secret = api.get("my-generic-secret", scope=RG)
    assert secret.name == "my-generic-secret"
    assert secret.labels == {"ext.ai.sap.com/owner": "team-a"}
    assert secret.replication is None  # only tenant-wide secrets replicate
    assert secret.created_at is not None
    api.update(
        "my-generic-secret",
        data={"some-credential": b"new"},
        labels={"ext.ai.sap.com/owner": ""},  # "" removes the label
        scope=RG,
    )
    assert fake.data("my-generic-secret", scope="default") == {"some-credential": b"new"}
    assert api.get("my-generic-secret", scope=RG).labels == {}
    assert [s.name for s in api.list(scope=RG)] == ["my-generic-secret"]
    api.delete("my-generic-secret", scope=RG)
    assert api.list(scope=RG) == []


def test_data_keys_are_sent_exactly_as_given(api: SecretsAPI, fake: FakeAICore) -> None:
    """No camel-casing of ``some-credential`` (SAP's Python SDK renames it)."""
    api.create("keys", data={"some-credential": "v", "tls.crt": "c", "a_b": "x"}, scope=RG)
    assert set(fake.data("keys", scope="default")) == {"some-credential", "tls.crt", "a_b"}


@pytest.mark.parametrize(
    ("scope", "headers"),
    [
        (Scope.resource_group("rg-1"), {"AI-Resource-Group": "rg-1"}),
        (Scope.main_tenant(), {"AI-Tenant-Scope": "true"}),
        (Scope.tenant_wide(), {"AI-Tenant-Scope": "true", "AI-Resource-Group": "*"}),
    ],
)
def test_scopes_are_headers(
    api: SecretsAPI, fake: FakeAICore, scope: Scope, headers: dict[str, str]
) -> None:
    api.create("scoped", data={"k": "v"}, scope=scope)
    (request,) = [r for r in fake.requests if r.method == "POST" and r.path.startswith("/v2")]
    sent = {k: v for k, v in request.headers.items() if k.startswith("AI-")}
    assert sent == headers
    assert [s.name for s in api.list(scope=scope)] == ["scoped"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.create("Bad_Name", data={"k": "v"}, scope=RG), "secret name"),
        (lambda a: a.create("x" * 253, data={"k": "v"}, scope=RG), "secret name"),
        (lambda a: a.create("ok", data={"a/b": "v"}, scope=RG), "can't be a file name"),
        (lambda a: a.create("ok", data={"..data": "v"}, scope=RG), "which the kubelet uses"),
        (lambda a: a.create("ok", data={"k": "x" * (1024 * 1024 + 1)}, scope=RG), "1 MiB"),
        (
            lambda a: a.create("ok", data={"k": "v"}, labels={"team": "a"}, scope=RG),
            "only ext.ai.sap.com/ labels",
        ),
        (
            lambda a: a.create(
                "ok", data={"k": "v"}, labels={"ext.ai.sap.com/" + "a" * 49: "v"}, scope=RG
            ),
            "label key rule",
        ),
        (
            lambda a: a.create(
                "ok", data={"k": "v"}, labels={"ext.ai.sap.com/-bad": "v"}, scope=RG
            ),
            "label key rule",
        ),
        (
            lambda a: a.create(
                "ok", data={"k": "v"}, labels={"ext.ai.sap.com/a": "v" * 5001}, scope=RG
            ),
            "at most 5000",
        ),
        (
            lambda a: a.update(
                "ok", labels={"ext.ai.sap.com/document-grounding": "true"}, scope=RG
            ),
            "can't be changed by an update",
        ),
        (
            lambda a: a.update(
                "ok", labels={"ext.ai.sap.com/documentRepositoryType": "x"}, scope=RG
            ),
            "can't be changed by an update",
        ),
        (lambda a: a.update(".", data={"k": "v"}, scope=RG), "can't be named '.'"),
        (lambda a: a.delete("..", scope=RG), "can't be named '..'"),
    ],
)
def test_rules_are_checked_before_any_request(
    api: SecretsAPI, fake: FakeAICore, call: object, message: str
) -> None:
    with pytest.raises(InvalidSecretError, match=message):
        call(api)  # type: ignore[operator]
    assert fake.requests == []  # not even a token was fetched


def test_the_token_is_fetched_once_and_renewed_once_on_401(
    api: SecretsAPI, fake: FakeAICore
) -> None:
    api.create("s", data={"k": "v"}, scope=RG)
    api.get("s", scope=RG)
    api.list(scope=RG)
    assert len(fake.tokens) == 1  # cached across requests
    fake.revoke_tokens()
    assert api.get("s", scope=RG).name == "s"  # 401, one new token, the request again
    assert len(fake.tokens) == 1
    assert sum(r.path == "/oauth/token" for r in fake.requests) == 2


@pytest.mark.parametrize(("lifetime", "fetched"), [(0, 2), (30, 1), (3600, 1)])
def test_a_token_is_renewed_before_it_expires(
    fake: FakeAICore, sleeps: Sleeps, lifetime: int, fetched: int
) -> None:
    """A minute early, or at half its life when it lives less than two minutes."""
    fake.token_lifetime = lifetime
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    with SecretsAPI(fake.url, auth, sleep=sleeps) as client:
        client.list(scope=RG)
        client.list(scope=RG)
    assert auth.fetched == fetched


def test_a_create_that_may_have_reached_the_api_is_not_sent_twice(
    fake: FakeAICore, sleeps: Sleeps
) -> None:
    """Only connection failures (nothing was sent) are retried for POST; a read timeout is
    reported, so that a created secret is not created again (409)."""
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    with SecretsAPI(fake.url, auth, sleep=sleeps, timeout=0.5) as client:
        fake.delay_next(1.0)  # the API answers after the client gave up reading
        with pytest.raises(AICoreError, match="POST /v2/admin/secrets: ReadTimeout"):
            client.create("slow", data={"k": "v"}, scope=RG)
    assert sleeps == []
    assert [r.method for r in fake.requests if r.path == "/v2/admin/secrets"] == ["POST"]


def test_retry_after_is_honoured(api: SecretsAPI, fake: FakeAICore, sleeps: Sleeps) -> None:
    fake.fail_next(429, retry_after=7)
    api.list(scope=RG)
    assert sleeps == [7.0]


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_client_errors_are_not_retried(
    api: SecretsAPI, fake: FakeAICore, sleeps: Sleeps, status: int
) -> None:
    fake.fail_next(status)
    with pytest.raises(APIError) as info:
        api.list(scope=RG)
    assert info.value.status == status
    assert info.value.code == "Injected"
    assert info.value.request_id
    assert sleeps == []
    assert len(api_requests(fake)) == 1


def test_gives_up_after_the_retries(fake: FakeAICore, sleeps: Sleeps) -> None:
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    with SecretsAPI(fake.url, auth, retries=2, sleep=sleeps) as client:
        fake.fail_next(503, times=3)
        with pytest.raises(APIError, match="503"):
            client.list(scope=RG)
    assert len(sleeps) == 2


def test_connection_errors_are_retried_then_reported(sleeps: Sleeps) -> None:
    closed = FakeAICore()
    url = closed.url  # bound but never served: connections are refused
    closed.close()
    # the token request meets the closed port first, and retries it itself
    auth = ClientCredentials(f"{url}/oauth/token", "c", "s", retries=3, sleep=sleeps)
    client = SecretsAPI(url, auth, retries=3, sleep=sleeps)
    with client, pytest.raises(AICoreError, match=r"ConnectError \(4 attempts\)"):
        client.list(scope=RG)
    assert len(sleeps) == 3


def test_api_errors_carry_code_message_and_request_id_never_the_body(
    api: SecretsAPI, fake: FakeAICore
) -> None:
    api.create("dup", data={"k": CANARY}, scope=RG)
    with pytest.raises(APIError) as info:
        api.create("dup", data={"k": CANARY}, scope=RG)
    error = info.value
    assert (error.status, error.code) == (400, "BadRequest")  # the stand-in's exists_status
    assert error.request_id is not None
    assert "request id" in str(error)
    assert CANARY not in str(error) + repr(error.__dict__)
    assert base64.b64encode(CANARY.encode()).decode() not in str(error)


@pytest.mark.parametrize(
    "field", ["resourceGroupSecretReplicationStatus", "resourceGroupSecretsSyncStatus"]
)
def test_wait_replicated_reads_either_field(fake: FakeAICore, sleeps: Sleeps, field: str) -> None:
    fake.replication_field = field
    fake.replication_delay = 3600  # never, within this test
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    with SecretsAPI(fake.url, auth, sleep=sleeps) as client:
        client.create("shared-key", data={"k": "v"}, scope=Scope.tenant_wide())
        secret = client.get("shared-key", scope=Scope.tenant_wide())
        assert secret.replication == {"default": False, "team-b": False}
        with pytest.raises(ReplicationTimeoutError) as info:
            client.wait_replicated("shared-key", timeout=0)
        assert info.value.pending == ["default", "team-b"]
        fake.replication_delay = 0
        replicated = client.wait_replicated("shared-key", timeout=5)
        assert replicated.replication == {"default": True, "team-b": True}


def test_from_env_with_a_service_key(
    fake: FakeAICore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AICORE_SERVICE_KEY", json.dumps(fake.service_key()))
    with SecretsAPI.from_env() as client:
        client.create("from-key", data={"k": "v"}, scope=RG)
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(fake.service_key()))
    monkeypatch.setenv("AICORE_SERVICE_KEY", str(key_file))
    with SecretsAPI.from_env() as client:
        assert client.get("from-key", scope=RG).name == "from-key"


def test_from_env_with_variables(fake: FakeAICore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AICORE_SERVICE_KEY", raising=False)
    for name, value in {
        "AICORE_AUTH_URL": fake.url,  # /oauth/token is added
        "AICORE_CLIENT_ID": fake.client_id,
        "AICORE_CLIENT_SECRET": fake.client_secret,
        "AICORE_BASE_URL": fake.url + "/v2",  # /v2 is not added twice
    }.items():
        monkeypatch.setenv(name, value)
    with SecretsAPI.from_env() as client:
        assert client.base_url == fake.url + "/v2"
        assert client.list(scope=RG) == []


def test_from_env_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SERVICE_KEY", "AUTH_URL", "CLIENT_ID", "CLIENT_SECRET", "BASE_URL"):
        monkeypatch.delenv(f"AICORE_{name}", raising=False)
    monkeypatch.setenv("AICORE_CLIENT_SECRET", CANARY)
    with pytest.raises(AICoreError) as info:
        SecretsAPI.from_env()
    message = str(info.value)
    assert "the AICORE_* variables: incomplete: it gives AICORE_CLIENT_SECRET; " in message
    assert "missing: AICORE_CLIENT_ID; AICORE_BASE_URL; AICORE_AUTH_URL" in message
    assert CANARY not in message
    monkeypatch.setenv("AICORE_SERVICE_KEY", '{"clientid": "' + CANARY)
    with pytest.raises(AICoreError, match="is not a service key") as bad:
        SecretsAPI.from_env()
    assert CANARY not in str(bad.value)


def test_scope_rules() -> None:
    with pytest.raises(ValueError, match="tenant_wide"):
        Scope.resource_group("*")
    assert str(Scope.tenant_wide()) == "tenant-wide"
    assert str(Scope.main_tenant()) == "main tenant"
    assert str(RG) == "resource group default"


@pytest.mark.smoke
def test_rotate_wait_and_the_deployment_follows(fake: FakeAICore, tmp_path: Path) -> None:
    """The whole loop: update through the API, replication confirmed, the mounted volume
    swaps, and the watcher in the deployment applies the new version."""
    import secretwatch
    from secretwatch.testing import AtomicVolume

    volume = AtomicVolume(tmp_path / "my-generic-secret")
    fake.project("shared-key", volume, resource_group="default")
    api = SecretsAPI.from_service_key(fake.service_key())
    with api:
        api.create("shared-key", data={"token": "first"}, scope=Scope.tenant_wide())
        api.wait_replicated("shared-key", timeout=5)
        # the volume is written after the replication (as the kubelet's sync follows it)
        with secretwatch.watch(volume.path, debounce=0, required=False) as secrets:
            first = secrets.wait_for_change(timeout=10, since=0)
            assert first is not None
            assert first["token"] == "first"
            seen = first.version
            api.update("shared-key", data={"token": "second"}, scope=Scope.tenant_wide())
            api.wait_replicated("shared-key", timeout=5)
            snapshot = secrets.wait_for_change(timeout=10, since=seen)
            assert snapshot is not None
            assert snapshot["token"] == "second"


def test_wrong_client_credentials_are_a_clear_error(fake: FakeAICore, sleeps: Sleeps) -> None:
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, CANARY)
    client = SecretsAPI(fake.url, auth, sleep=sleeps)
    with client, pytest.raises(APIError, match="the token request failed") as info:
        client.list(scope=RG)
    assert info.value.status == 401
    assert CANARY not in str(info.value) + repr(auth) + repr(client)
    assert sleeps == []  # not retried


def test_retry_after_zero_is_honoured(api: SecretsAPI, fake: FakeAICore, sleeps: Sleeps) -> None:
    fake.fail_next(503, retry_after=0)
    api.list(scope=RG)
    assert sleeps == [0.0]
