"""``FakeAICore`` enforces the rules its sources state, and no other, over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from secretwatch.aicore import APIError, ClientCredentials, Scope, SecretsAPI
from secretwatch.testing import FakeAICore

TENANT_WIDE = {"AI-Tenant-Scope": "true", "AI-Resource-Group": "*"}
DEFAULT = {"AI-Resource-Group": "default"}
QUOTA = "/v2/admin/resourceQuota/secrets"


@pytest.fixture
def fake() -> Iterator[FakeAICore]:
    with FakeAICore(resource_groups=("default", "team-b")) as server:
        yield server


@pytest.fixture
def http(fake: FakeAICore) -> Iterator[httpx.Client]:
    """A client that sends exactly the headers a test gives (and a token)."""
    auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
    with httpx.Client(base_url=fake.url, auth=auth) as client:
        yield client


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"name": name, "data": encoded}


def test_a_request_without_scope_headers_is_served_in_resource_group_default(
    fake: FakeAICore, http: httpx.Client
) -> None:
    """No ``AI-Resource-Group`` and no ``AI-Tenant-Scope``: the secret is in group ``default``."""
    assert http.post("/v2/admin/secrets", json=secret("plain", k="v")).status_code == 200
    assert fake.data("plain", scope="default") == {"k": b"v"}
    assert http.get("/v2/admin/secrets/plain", headers=DEFAULT).status_code == 200
    assert http.get("/v2/admin/secrets/plain").json()["name"] == "plain"


@pytest.mark.parametrize(
    "headers",
    [
        {"AI-Tenant-Scope": "true", "AI-Resource-Group": "default"},
        {"AI-Resource-Group": "*"},
    ],
    ids=["tenant-scope-and-a-group", "star-without-tenant-scope"],
)
def test_a_scope_no_source_defines_is_refused_not_guessed(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    """Headers that name no documented scope are a 400 in the API's error object."""
    answer = http.get("/v2/admin/secrets", headers=headers)
    assert answer.status_code == 400
    assert set(answer.json()["error"]) >= {"code", "message", "requestId"}


def test_the_quota_endpoint_counts_per_scope() -> None:
    """``usage.count`` is the number of secrets of the scope the headers name, not of all."""
    fake_quotas = {"*": 5, "default": 3, "team-b": 3}
    with FakeAICore(quotas=fake_quotas) as fake:
        auth = ClientCredentials(f"{fake.url}/oauth/token", fake.client_id, fake.client_secret)
        with httpx.Client(base_url=fake.url, auth=auth) as client:
            for name in ("a", "b"):
                client.post("/v2/admin/secrets", json=secret(name, k="v"), headers=TENANT_WIDE)
            client.post("/v2/admin/secrets", json=secret("c", k="v"), headers=DEFAULT)
            answers = {
                scope: client.get(QUOTA, headers=headers).json()
                for scope, headers in {
                    "*": TENANT_WIDE,
                    "default": DEFAULT,
                    "team-b": {"AI-Resource-Group": "team-b"},
                    "none": {},
                }.items()
            }
    assert answers == {
        "*": {"usage": {"count": 2}, "quota": {"maxCount": 5}},
        "default": {"usage": {"count": 1}, "quota": {"maxCount": 3}},
        "team-b": {"usage": {"count": 0}, "quota": {"maxCount": 3}},
        "none": {"usage": {"count": 1}, "quota": {"maxCount": 3}},  # resource group default
    }


def test_the_tenant_wide_quota_is_five_and_quota_only_leaves_out_the_usage(
    http: httpx.Client,
) -> None:
    """By default the tenant-wide limit is SAP's documented five; ``quotaOnly=true`` answers
    the quota without the usage."""
    answer = http.get(QUOTA, headers=TENANT_WIDE, params={"quotaOnly": "true"})
    assert answer.json() == {"quota": {"maxCount": 5}}


def test_no_quota_is_made_up_for_a_scope_whose_limit_is_not_documented(
    http: httpx.Client,
) -> None:
    """SAP documents no limit of resource-group secrets: the stand-in says so, in the API's
    error object, rather than answer a number of its own."""
    answer = http.get(QUOTA, headers=DEFAULT)
    assert answer.status_code == 501
    assert "quotas=" in answer.json()["error"]["message"]


def test_the_sixth_tenant_wide_secret_is_refused(fake: FakeAICore) -> None:
    """Five tenant-wide secrets are accepted, the sixth is a 400 in the API's error object;
    other scopes are not limited, and a deletion makes room again."""
    with SecretsAPI.from_service_key(fake.service_key()) as api:
        for number in range(5):
            api.create(f"shared-{number}", data={"k": "v"}, scope=Scope.tenant_wide())
        with pytest.raises(APIError) as info:
            api.create("shared-5", data={"k": "v"}, scope=Scope.tenant_wide())
        assert info.value.status == 400
        assert "quota" in info.value.message
        assert info.value.request_id
        for number in range(6):
            api.create(f"rg-{number}", data={"k": "v"}, scope=Scope.resource_group("default"))
        api.delete("shared-0", scope=Scope.tenant_wide())
        api.create("shared-5", data={"k": "v"}, scope=Scope.tenant_wide())
        assert len(api.list(scope=Scope.tenant_wide())) == 5


@pytest.mark.parametrize(("option", "status"), [({}, 400), ({"exists_status": 409}, 409)])
def test_a_second_create_of_a_name_is_refused_and_keeps_the_first(
    option: dict[str, int], status: int
) -> None:
    """A POST for a name the scope holds changes nothing; its status, which the spec does not
    define, is one the spec lists for the POST (400) unless a test asks for another."""
    with FakeAICore(**option) as fake, SecretsAPI.from_service_key(fake.service_key()) as api:
        api.create("dup", data={"k": "first"}, scope=Scope.main_tenant())
        with pytest.raises(APIError) as info:
            api.create("dup", data={"k": "second"}, scope=Scope.main_tenant())
        assert info.value.status == status
        assert fake.data("dup", scope="") == {"k": b"first"}


def test_count_is_the_pages_unless_dollar_count_is_true(http: httpx.Client) -> None:
    """``count`` counts the items of the answer, or with ``$count=true`` all of them."""
    for name in ("a", "b", "c"):
        http.post("/v2/admin/secrets", json=secret(name, k="v"), headers=DEFAULT)
    page = http.get("/v2/admin/secrets", headers=DEFAULT, params={"$top": "2"}).json()
    assert (page["count"], len(page["resources"])) == (2, 2)
    everything = {"$top": "2", "$count": "true"}
    assert http.get("/v2/admin/secrets", headers=DEFAULT, params=everything).json()["count"] == 3


LABEL = "ext.ai.sap.com/team"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "", {"name": "Bad_Name", "data": {}}, 400),  # name pattern
        ("POST", "", {"name": "x" * 253, "data": {}}, 400),  # name length
        ("POST", "", {"name": "no-data"}, 400),  # data required
        ("POST", "", {"name": "not-b64", "data": {"k": "%%%"}}, 400),  # base64 values
        ("POST", "", {**secret("l1"), "labels": [{"key": "team", "value": "a"}]}, 400),
        ("POST", "", {**secret("l2"), "labels": [{"key": LABEL + "x" * 60, "value": "a"}]}, 400),
        ("POST", "", {**secret("l3"), "labels": [{"key": LABEL, "value": "v" * 5001}]}, 400),
        ("PATCH", "/kept", {"labels": [{"key": "ext.ai.sap.com/document-grounding"}]}, 400),
        ("PATCH", "/missing", secret("missing"), 404),
        ("GET", "/missing", None, 404),
        ("DELETE", "/missing", None, 404),
    ],
)
def test_each_documented_rule_is_enforced(
    http: httpx.Client, method: str, path: str, body: Any, status: int
) -> None:
    """Each rule of the spec and the docs is answered with its status and the error object."""
    http.post("/v2/admin/secrets", json=secret("kept", k="v"), headers=DEFAULT)
    answer = http.request(method, f"/v2/admin/secrets{path}", json=body, headers=DEFAULT)
    assert answer.status_code == status
    assert set(answer.json()["error"]) >= {"code", "message", "requestId"}


def test_an_empty_label_value_removes_the_label_and_only_tenant_wide_secrets_replicate(
    http: httpx.Client,
) -> None:
    """A PATCH with an empty label value removes it; only a tenant-wide secret has a
    replication map."""
    labelled = {**secret("kept", k="v"), "labels": [{"key": LABEL, "value": "a"}]}
    http.post("/v2/admin/secrets", json=labelled, headers=DEFAULT)
    http.post("/v2/admin/secrets", json=labelled, headers=TENANT_WIDE)
    removal = {"labels": [{"key": LABEL, "value": ""}]}
    assert http.patch("/v2/admin/secrets/kept", json=removal, headers=DEFAULT).status_code == 200
    group = http.get("/v2/admin/secrets/kept", headers=DEFAULT).json()
    assert group["labels"] == []
    assert "resourceGroupSecretReplicationStatus" not in group
    tenant_wide = http.get("/v2/admin/secrets/kept", headers=TENANT_WIDE).json()
    assert tenant_wide["resourceGroupSecretReplicationStatus"] == {"default": True, "team-b": True}


def test_no_token_is_a_401_in_the_error_object(fake: FakeAICore) -> None:
    """A request without a valid token is answered 401, for the quota endpoint too."""
    for path in ("/v2/admin/secrets", QUOTA):
        answer = httpx.get(f"{fake.url}{path}", headers=TENANT_WIDE)
        assert answer.status_code == 401
        assert "message" in answer.json()["error"]
