"""Where AI Core credentials come from: SAP's sources in SAP's order, each used whole, with
clear errors that name the source and never a value; and the CLI's use of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.aicore import AICoreError, Scope, SecretsAPI
from secretwatch.aicore._credentials import resolve
from secretwatch.testing import FakeAICore

from .conftest import aicore_cli

CANARY = "CANARY-creds-91b2"


def key(name: str, **changes: object) -> dict[str, object]:
    """A client-secret service key whose client id is ``name``."""
    return {
        "clientid": name,
        "clientsecret": CANARY,
        "url": "https://auth.example",
        "serviceurls": {"AI_API_URL": "https://api.example"},
        **changes,
    }


def variables(name: str) -> dict[str, str]:
    return {
        "AICORE_CLIENT_ID": name,
        "AICORE_CLIENT_SECRET": CANARY,
        "AICORE_AUTH_URL": "https://auth.example",
        "AICORE_BASE_URL": "https://api.example",
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An AICORE_HOME with a complete default profile (client id "profile") and a "dev"
    one (client id "dev", resource group "dev-rg")."""
    directory = tmp_path / "aicore"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(variables("profile")))
    dev = {**variables("dev"), "AICORE_RESOURCE_GROUP": "dev-rg"}
    (directory / "config_dev.json").write_text(json.dumps(dev))
    return directory


def every_source(home: Path) -> dict[str, str]:
    vcap = {"user-provided": [{"label": "aicore", "name": "bound", "credentials": key("vcap")}]}
    return {
        "AICORE_SERVICE_KEY": json.dumps(key("service-key")),
        **variables("variables"),
        "AICORE_HOME": str(home),
        "VCAP_SERVICES": json.dumps(vcap),
    }


def test_sources_in_sap_order(home: Path) -> None:
    """Arguments, then AICORE_SERVICE_KEY, the AICORE_* variables, the profile file and
    VCAP_SERVICES: each is used when the ones above give nothing."""
    environ = every_source(home)
    explicit = {"client_id": "arguments", "client_secret": CANARY}
    explicit |= {"auth_url": "https://a", "base_url": "https://b"}
    assert resolve(explicit, environ=environ).credentials.client_id == "arguments"
    found = resolve(environ=environ)
    assert (found.credentials.client_id, found.source) == ("service-key", "AICORE_SERVICE_KEY")
    del environ["AICORE_SERVICE_KEY"]
    found = resolve(environ=environ)
    assert (found.credentials.client_id, found.source) == ("variables", "the AICORE_* variables")
    for name in variables("x"):
        del environ[name]
    found = resolve(environ=environ)
    assert found.credentials.client_id == "profile"
    assert found.source == f"profile 'default' in {home / 'config.json'}"
    (home / "config.json").unlink()
    found = resolve(environ=environ)
    assert (found.credentials.client_id, found.source) == ("vcap", "VCAP_SERVICES binding 'bound'")
    assert f"the profile file: {home / 'config.json'} does not exist" in found.notes


def test_a_source_is_used_whole_and_an_incomplete_one_is_an_error(home: Path) -> None:
    """AICORE_CLIENT_ID alone, above a complete profile, is an error naming what is set and
    what is missing (SAP's rule: no merging), never a value."""
    environ = {"AICORE_HOME": str(home), "AICORE_CLIENT_ID": CANARY}
    with pytest.raises(AICoreError) as info:
        resolve(environ=environ)
    assert str(info.value) == (
        "the AICORE_* variables: incomplete: it gives AICORE_CLIENT_ID; missing: "
        "AICORE_BASE_URL; AICORE_AUTH_URL; AICORE_CLIENT_SECRET, or AICORE_CERT_STR and "
        "AICORE_KEY_STR, or AICORE_CERT_FILE_PATH and AICORE_KEY_FILE_PATH (a source is used "
        "whole, as SAP's SDK does: the sources below it were not read)"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AICORE_SERVICE_KEY": "{" + CANARY}, "AICORE_SERVICE_KEY is not a service key's"),
        (  # not shown: a value that is no file may be a secret, set there by mistake
            {"AICORE_SERVICE_KEY": "/no/such/" + CANARY},
            "AICORE_SERVICE_KEY is neither a service key's JSON object nor the path of an "
            "existing file (its value is not shown)",
        ),
        (  # what `cf service-key` prints, its header line pasted too
            {
                "AICORE_SERVICE_KEY": "Getting key k for service instance i as admin...\n\n"
                + json.dumps({"credentials": key("k")})
            },
            "AICORE_SERVICE_KEY is neither a service key's JSON object nor the path",
        ),
        (
            {"AICORE_SERVICE_KEY": json.dumps(key("k", serviceurls={}))},
            "AICORE_SERVICE_KEY: incomplete: it gives clientid, clientsecret, url; missing: "
            "serviceurls.AI_API_URL",
        ),
        (
            {"AICORE_SERVICE_KEY": json.dumps(key("k", certificate=CANARY, key=CANARY))},
            "AICORE_SERVICE_KEY gives more than one way to authenticate (clientsecret; "
            "certificate and key): give one",
        ),
        (
            {"AICORE_SERVICE_KEY": json.dumps(key("k", clientsecret=None, certificate=CANARY))},
            "missing: clientsecret, or certificate and key (a source",
        ),
        ({"AICORE_PROFILE": "nope"}, "config_nope.json does not exist"),
        ({"VCAP_SERVICES": CANARY}, "VCAP_SERVICES is not a JSON object"),
        (
            {**variables("v"), "AICORE_AUTH_URL": f"https://{CANARY} x"},
            "AICORE_AUTH_URL of the AICORE_* variables is not an http(s) URL with a host",
        ),
        (
            {**variables("v"), "AICORE_BASE_URL": f"ftp://{CANARY}"},
            "AICORE_BASE_URL of the AICORE_* variables is not an http(s) URL with a host",
        ),
        (
            {**variables("v"), "AICORE_AUTH_URL": f"http://{CANARY}.example"},
            "AICORE_AUTH_URL of the AICORE_* variables is plain http to another machine",
        ),
        ({}, "no AI Core credentials: set AICORE_SERVICE_KEY"),
    ],
)
def test_bad_sources_are_clear_errors_without_values(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    """A malformed, missing or incomplete source is named with its problem, never a value."""
    with pytest.raises(AICoreError) as info:
        resolve(environ={"AICORE_HOME": str(tmp_path), **environ})
    assert message in str(info.value)
    assert CANARY not in str(info.value)
    assert info.value.__context__ is None


def test_a_service_key_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """A service key file that an editor saved with a UTF-8 byte-order mark is read."""
    saved = tmp_path / "key.json"
    saved.write_text("\ufeff" + json.dumps(key("bom")), encoding="utf-8")
    found = resolve(environ={"AICORE_HOME": str(tmp_path), "AICORE_SERVICE_KEY": str(saved)})
    assert found.credentials.client_id == "bom"


def test_a_bad_config_file_names_the_file(tmp_path: Path) -> None:
    """A profile file that is not JSON is an error naming the file, not its text."""
    (tmp_path / "config.json").write_text('{"AICORE_CLIENT_SECRET": "' + CANARY)
    with pytest.raises(AICoreError) as info:
        resolve(environ={"AICORE_HOME": str(tmp_path)})
    assert (
        str(info.value) == f"profile 'default' in {tmp_path / 'config.json'} is not a JSON object"
    )


def test_a_malformed_source_below_the_one_used_is_not_read(home: Path) -> None:
    """Unlike SAP's SDK, a broken VCAP_SERVICES does not break complete variables above it."""
    environ = {**variables("variables"), "VCAP_SERVICES": "{", "AICORE_HOME": str(home)}
    found = resolve(environ=environ)
    assert found.credentials.client_id == "variables"
    assert "VCAP_SERVICES: not read (a source above gave credentials)" in found.notes


def test_service_key_forms(tmp_path: Path) -> None:
    """AICORE_SERVICE_KEY as JSON, as a file, and wrapped as cf service-key prints it."""
    path = tmp_path / "key.json"
    path.write_text(json.dumps({"credentials": key("wrapped")}))
    found = resolve(environ={"AICORE_SERVICE_KEY": str(path), "AICORE_HOME": str(tmp_path)})
    assert found.credentials.client_id == "wrapped"
    assert found.source == f'AICORE_SERVICE_KEY (a file: {path}) (its "credentials")'


def test_profiles_and_aicore_config(home: Path, tmp_path: Path) -> None:
    """AICORE_PROFILE picks config_<profile>.json (its resource group too); AICORE_CONFIG
    names a file directly and wins over the profile."""
    found = resolve(environ={"AICORE_HOME": str(home), "AICORE_PROFILE": "dev"})
    assert found.credentials.client_id == "dev"
    assert (found.resource_group, found.resource_group_source) == (
        "dev-rg",
        f"AICORE_RESOURCE_GROUP in profile 'dev' in {home / 'config_dev.json'}",
    )
    assert resolve(environ={"AICORE_HOME": str(home)}, profile="dev").source.startswith(
        "profile 'dev'"
    )
    direct = tmp_path / "elsewhere.json"
    direct.write_text(json.dumps(variables("direct")))
    environ = {"AICORE_HOME": str(home), "AICORE_PROFILE": "nope", "AICORE_CONFIG": str(direct)}
    assert resolve(environ=environ).credentials.client_id == "direct"


def test_the_resource_group_is_resolved_on_its_own(home: Path) -> None:
    """Credentials from the service key, the resource group from AICORE_RESOURCE_GROUP, else
    from the profile file; an explicit one first; none when no source has one."""
    environ = {
        "AICORE_SERVICE_KEY": json.dumps(key("k")),
        "AICORE_HOME": str(home),
        "AICORE_PROFILE": "dev",
    }
    assert resolve(environ=environ).resource_group == "dev-rg"
    environ["AICORE_RESOURCE_GROUP"] = "env-rg"
    assert resolve(environ=environ).resource_group == "env-rg"
    assert resolve({"resource_group": "kw"}, environ=environ).resource_group == "kw"
    del environ["AICORE_PROFILE"], environ["AICORE_RESOURCE_GROUP"]
    assert resolve(environ=environ).resource_group is None


def test_suffixes_are_added_once_and_cert_url_wins(tmp_path: Path) -> None:
    """/oauth/token and /v2 once, even after a trailing slash (SAP's SDK doubles them);
    certurl replaces url for the token."""
    environ = {
        "AICORE_HOME": str(tmp_path),
        "AICORE_SERVICE_KEY": json.dumps(
            key("k", url="https://a/oauth/token/", serviceurls={"AI_API_URL": "https://b/v2/"})
        ),
    }
    credentials = resolve(environ=environ).credentials
    assert (credentials.token_url, credentials.base_url) == (
        "https://a/oauth/token",
        "https://b/v2",
    )
    assert CANARY not in repr(credentials)


def test_empty_values_count_as_unset(home: Path) -> None:
    """An empty AICORE_SERVICE_KEY or variable is unset, as in SAP's SDK."""
    environ = {"AICORE_SERVICE_KEY": "", "AICORE_CLIENT_ID": "", "AICORE_HOME": str(home)}
    assert resolve(environ=environ).credentials.client_id == "profile"


# -- from_env and the CLI ------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAICore]:
    with FakeAICore(resource_groups=("default", "team-a"), client_secret=CANARY) as server:
        with SecretsAPI.from_service_key(server.service_key()) as api:
            api.create("team-key", data={"k": "v"}, scope=Scope.resource_group("team-a"))
        yield server


def profile_home(fake: FakeAICore, tmp_path: Path, **extra: str) -> Path:
    config = {
        "AICORE_CLIENT_ID": fake.client_id,
        "AICORE_CLIENT_SECRET": fake.client_secret,
        "AICORE_AUTH_URL": fake.url,
        "AICORE_BASE_URL": fake.url,
        **extra,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_from_env_takes_explicit_values_first(fake: FakeAICore, tmp_path: Path) -> None:
    """SecretsAPI.from_env's keyword arguments are the first source."""
    with SecretsAPI.from_env(
        environ={"AICORE_HOME": str(tmp_path)},
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        auth_url=fake.url,
        base_url=fake.url,
    ) as api:
        assert [s.name for s in api.list(scope=Scope.resource_group("team-a"))] == ["team-key"]


def test_the_cli_scope_defaults_to_the_profile_resource_group(
    fake: FakeAICore, tmp_path: Path
) -> None:
    """Without a scope flag, status uses the profile's AICORE_RESOURCE_GROUP, and says so;
    AICORE_RESOURCE_GROUP wins over it."""
    home = profile_home(fake, tmp_path, AICORE_RESOURCE_GROUP="team-a")
    done = aicore_cli(None, "status", "team-key", AICORE_HOME=str(home))
    assert done.returncode == 0, done.stderr
    assert "name:        team-key" in done.stdout
    assert "resource group team-a (from AICORE_RESOURCE_GROUP in profile 'default'" in done.stderr
    done = aicore_cli(
        None, "status", "team-key", AICORE_HOME=str(home), AICORE_RESOURCE_GROUP="default"
    )
    assert done.returncode == 1
    assert "404" in done.stderr
    assert "resource group default (from AICORE_RESOURCE_GROUP; no scope flag given)" in done.stderr


def test_rotate_uses_aicore_resource_group(fake: FakeAICore) -> None:
    """rotate without a scope flag updates the secret in AICORE_RESOURCE_GROUP."""
    done = aicore_cli(
        fake.service_key(),
        "rotate",
        "team-key",
        "--set",
        f"k={CANARY}",
        AICORE_RESOURCE_GROUP="team-a",
    )
    assert done.returncode == 0, done.stderr
    assert fake.data("team-key", scope="team-a") == {"k": CANARY.encode()}
    assert CANARY not in done.stdout + done.stderr


def test_explain_credentials_names_sources_never_values(fake: FakeAICore, tmp_path: Path) -> None:
    """status --explain-credentials says which source is used and why not the others,
    without a request and without a value."""
    home = profile_home(fake, tmp_path)
    requests = len(fake.requests)
    done = aicore_cli(fake.service_key(), "status", "--explain-credentials", AICORE_HOME=str(home))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "credentials: AICORE_SERVICE_KEY",
        "  method: client secret",
        "  token endpoint: from url (+ /oauth/token when missing)",
        "  API: from serviceurls.AI_API_URL (+ /v2 when missing)",
        "resource group: none (a scope flag is needed)",
        "not used: arguments: gives no credential",
        "not used: the AICORE_* variables: not read (a source above gave credentials)",
        "not used: the profile file: not read (a source above gave credentials)",
        "not used: VCAP_SERVICES: not read (a source above gave credentials)",
    ]
    assert CANARY not in done.stdout + done.stderr
    assert fake.url not in done.stdout
    assert len(fake.requests) == requests
    done = aicore_cli(None, "status", "--explain-credentials", "--json", AICORE_HOME=str(home))
    explained = json.loads(done.stdout)
    assert explained["source"] == f"profile 'default' in {home / 'config.json'}"
    assert explained["not_used"][1] == "AICORE_SERVICE_KEY: not set"


def test_explain_credentials_reports_a_bad_source(tmp_path: Path) -> None:
    """An incomplete source is one clear line on stderr (exit 1), naming no value."""
    done = aicore_cli(
        None, "status", "--explain-credentials", AICORE_HOME=str(tmp_path), AICORE_KEY_STR=CANARY
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "secretwatch: the AICORE_* variables: incomplete: it gives AICORE_KEY_STR;"
    )
    assert CANARY not in done.stdout + done.stderr
    done = aicore_cli(None, "status", AICORE_HOME=str(tmp_path))
    assert done.returncode == 2
    assert "give the generic secret's NAME (or --explain-credentials)" in done.stderr
