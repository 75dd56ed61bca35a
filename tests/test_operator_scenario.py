"""An AI Core rotation end to end, as an operator and a deployment live it.

The operator runs ``secretwatch rotate --tenant-wide --wait`` with an X.509 service key
from ``$AICORE_HOME/config.json`` (certificate and key files, as ``aicore configure``
writes them); the API (the stand-in, over real HTTP, its token endpoint over mutual TLS)
refuses the command's token as expired (a 401), then answers a 500 and a 429; it
replicates the secret and, as the kubelet would, writes it into the volume mounted in the
deployment, where the serving example (uvicorn, a real process) watches it. The app ends
up calling its upstream with the new value, and no value appears in any output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from secretwatch.aicore import Scope, SecretsAPI
from secretwatch.testing import AtomicVolume, FakeAICore

from .certificates import mutual_tls
from .conftest import TIMEOUT, aicore_cli
from .test_example_serving import ROOT, Upstream, upstream  # noqa: F401 (a fixture)

OLD = "CANARY-operator-old-credential"
NEW = "CANARY-operator-new-credential"
NAME = "upstream-credential"


def test_a_tenant_wide_rotation_reaches_the_serving_app(
    tmp_path: Path,
    upstream: Upstream,  # noqa: F811 (the fixture)
) -> None:
    """rotate --wait, through an expired token, a 500 and a 429, ends with the deployment's
    app calling its upstream with the new value; no output shows either value."""
    certificates = mutual_tls()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(certificates.ca)
    with FakeAICore(resource_groups=("default", "team-b"), replication_delay=2) as api:
        api.serve_x509(
            certificate=certificates.server_certificate,
            key=certificates.server_key,
            client_ca=certificates.ca,
            client_certificate=certificates.client_chain,
            client_key=certificates.client_key,
        )
        with SecretsAPI.from_service_key(api.service_key()) as client:
            client.create(NAME, data={"some-credential": OLD}, scope=Scope.tenant_wide())
        # the deployment's mount, as the kubelet wrote it when the pod started
        volume = AtomicVolume(tmp_path / "mounted")
        volume.write({"some-credential": OLD})
        api.project(NAME, volume, resource_group="default")

        home = tmp_path / "aicore-home"
        home.mkdir()
        key = api.service_key(x509=True)
        (home / "client.crt").write_text(key["certificate"])
        (home / "client.key").write_text(key["key"])
        profile = {
            "AICORE_CLIENT_ID": key["clientid"],
            "AICORE_CERT_FILE_PATH": str(home / "client.crt"),
            "AICORE_KEY_FILE_PATH": str(home / "client.key"),
            "AICORE_CERT_URL": key["certurl"],
            "AICORE_BASE_URL": key["serviceurls"]["AI_API_URL"],
        }
        (home / "config.json").write_text(json.dumps(profile))
        new_value = tmp_path / "new-credential"
        new_value.write_text(NEW)

        with ServingApp(volume, upstream, tmp_path) as (app, outputs):
            assert called_with(app, upstream) == OLD
            api.fail_next(401)  # the token the command holds has expired: fetched again
            api.fail_next(500)  # the update is sent again (a PATCH repeats safely)
            api.fail_next(429, retry_after=0.2)
            done = aicore_cli(
                None,
                "rotate",
                NAME,
                "--tenant-wide",
                "--set-file",
                f"some-credential={new_value}",
                "--wait",
                "--timeout",
                "60",
                AICORE_HOME=str(home),
                SSL_CERT_FILE=str(ca_file),
            )
            assert done.returncode == 0, done.stderr
            assert "replicated into every resource group: default, team-b" in done.stdout
            # it waited for replication: the API says so now (replication stays done)
            with SecretsAPI.from_service_key(api.service_key()) as client:
                assert client.get(NAME, scope=Scope.tenant_wide()).replicated
            sent = [(r.method, r.path) for r in api.requests]
            patch = ("PATCH", f"/v2/admin/secrets/{NAME}")
            assert sent.count(patch) == 4  # refused (401), 500, 429, then applied
            assert sent.count(("POST", "/oauth/token")) >= 3  # a new token after the 401
            wait_for_version(app, 2)
            assert called_with(app, upstream) == NEW
    assert api.data(NAME, scope="*") == {"some-credential": NEW.encode()}
    said = done.stdout + done.stderr + "".join(path.read_text() for path in outputs)
    assert "CANARY" not in said
    assert "PRIVATE KEY" not in said
    assert key["key"].splitlines()[1] not in said  # a line of the key's material


class ServingApp:
    """The serving example under uvicorn, its output in files; a client once it answers."""

    def __init__(self, volume: AtomicVolume, server: Upstream, tmp_path: Path):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.outputs = [tmp_path / "app.out", tmp_path / "app.err"]
        env = {**os.environ, "SECRET_DIR": str(volume.path), "UPSTREAM_URL": server.url}
        command = [sys.executable, "-m", "uvicorn", "examples.serving.app:app"]
        command += ["--fd", str(self.listener.fileno()), "--log-level", "info"]
        with self.outputs[0].open("w") as out, self.outputs[1].open("w") as err:
            self.server = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                pass_fds=[self.listener.fileno()],
                stdout=out,
                stderr=err,
            )
        self.listener.close()  # the server has it now

    def __enter__(self) -> tuple[httpx.Client, list[Path]]:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=TIMEOUT)
        # the socket listens already: this waits in its backlog until the app is up
        assert self.client.get("/healthz").json() == {"secret_version": 1}
        return self.client, self.outputs

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()
        self.server.terminate()
        self.server.wait(TIMEOUT)


def called_with(app: httpx.Client, server: Upstream) -> str:
    """The credential the app sends its upstream (``server``) for one request."""
    assert app.post("/v1/predict", json={"seq": 0}).status_code == 200
    _, credential = server.calls.get(timeout=TIMEOUT)
    return credential


def wait_for_version(app: httpx.Client, version: int) -> None:
    """Ask the app until its snapshot is ``version`` (it answers each ask at once)."""
    deadline = time.monotonic() + TIMEOUT
    while app.get("/healthz").json()["secret_version"] != version:
        if time.monotonic() > deadline:
            pytest.fail(f"the app never reached version {version}")
