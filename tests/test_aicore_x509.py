"""X.509 service keys over real mutual TLS (a CA made here), and the token request's retries,
against the stand-in API and scripted token endpoints on 127.0.0.1."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from secretwatch.aicore import AICoreError, APIError, ClientCredentials, Scope, SecretsAPI
from secretwatch.testing import FakeAICore

from .certificates import MutualTLS, mutual_tls
from .conftest import TIMEOUT, aicore_cli

CANARY = "CANARY-x509-7f3e"
RG = Scope.resource_group("default")


@pytest.fixture(scope="module")
def certificates() -> MutualTLS:
    return mutual_tls()


@pytest.fixture
def fake(
    certificates: MutualTLS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeAICore]:
    """The stand-in with its token endpoint over mutual TLS too; the client trusts the CA."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(certificates.ca)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with FakeAICore() as server:
        server.serve_x509(
            certificate=certificates.server_certificate,
            key=certificates.server_key,
            client_ca=certificates.ca,
            client_certificate=certificates.client_chain,
            client_key=certificates.client_key,
        )
        yield server


class _Creations:
    """inotify on directories: which files were created in them (read without blocking)."""

    IN_CREATE, IN_MOVED_TO, IN_NONBLOCK = 0x100, 0x80, 0o4000

    def __init__(self, *directories: Path):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(self.IN_NONBLOCK)
        assert self._fd >= 0
        for directory in directories:
            mask = self.IN_CREATE | self.IN_MOVED_TO
            assert self._libc.inotify_add_watch(self._fd, str(directory).encode(), mask) >= 0

    def names(self) -> list[str]:
        try:
            raw = os.read(self._fd, 65536)
        except BlockingIOError:
            return []
        names, offset = [], 0
        while offset < len(raw):
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", raw, offset)
            names.append(raw[offset + 16 : offset + 16 + length].rstrip(b"\0").decode())
            offset += 16 + length
        return names

    def close(self) -> None:
        os.close(self._fd)


def _memfds() -> list[str]:
    links = []
    for name in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            continue
    return [link for link in links if link.startswith("/memfd:")]


def test_an_x509_service_key_gets_its_token_over_mutual_tls_and_never_writes_its_key(
    fake: FakeAICore,
    certificates: MutualTLS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An X.509 key's token comes from <certurl>/oauth/token over mutual TLS (the whole chain
    presented, no secret sent); no file is created in $TMPDIR or the working directory
    meanwhile, and no in-memory file is left open."""
    temp, work = tmp_path / "tmp", tmp_path / "work"
    temp.mkdir()
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    monkeypatch.chdir(work)
    key = fake.service_key(x509=True)
    assert "clientsecret" not in key
    creations = _Creations(temp, work, Path(tempfile.gettempdir()))
    try:
        with SecretsAPI.from_service_key(key) as api:
            api.create("x509-made", data={"k": "v"}, scope=RG)
            assert [s.name for s in api.list(scope=RG)] == ["x509-made"]
        created = creations.names()
    finally:
        creations.close()
    assert created == []
    assert _memfds() == []
    tokens = [r for r in fake.requests if r.path == "/oauth/token"]
    assert len(tokens) == 1  # over mutual TLS: the plain endpoint wants a secret
    assert len(fake.tokens) == 1
    for directory in (temp, work):
        for path in directory.rglob("*"):
            assert certificates.client_key.encode() not in path.read_bytes()


def test_the_leaf_alone_is_not_enough(fake: FakeAICore, certificates: MutualTLS) -> None:
    """A certificate field holding only the leaf fails the handshake (the server does not
    know the intermediate): the chain is presented whole, not its first certificate; and a
    refused certificate is not retried."""
    key = {**fake.service_key(x509=True), "certificate": certificates.client_leaf}
    with SecretsAPI.from_service_key(key, retries=0) as api, pytest.raises(AICoreError) as info:
        api.list(scope=RG)
    assert str(info.value).endswith("(TLS: a certificate was refused, the server's or ours)")
    assert info.value.__cause__ is None


def test_pem_text_with_literal_backslash_n_from_variables(fake: FakeAICore) -> None:
    """AICORE_CERT_STR and AICORE_KEY_STR with literal \\n (a PEM pasted into one line)
    work, as in SAP's SDK; AICORE_CERT_URL gives the token endpoint."""
    key = fake.service_key(x509=True)
    environ = {
        "AICORE_CLIENT_ID": key["clientid"],
        "AICORE_CERT_STR": key["certificate"].replace("\n", "\\n"),
        "AICORE_KEY_STR": key["key"].replace("\n", "\\n"),
        "AICORE_CERT_URL": key["certurl"],
        "AICORE_AUTH_URL": key["url"],  # replaced by the cert URL, as SAP's SDK does
        "AICORE_BASE_URL": key["serviceurls"]["AI_API_URL"],
    }
    with SecretsAPI.from_env(environ=environ) as api:
        assert api.list(scope=RG) == []


def test_certificate_files_from_variables(fake: FakeAICore, tmp_path: Path) -> None:
    """AICORE_CERT_FILE_PATH and AICORE_KEY_FILE_PATH name the chain and the key."""
    key = fake.service_key(x509=True)
    (tmp_path / "cert.pem").write_text(key["certificate"])
    (tmp_path / "key.pem").write_text(key["key"])
    environ = {
        "AICORE_CLIENT_ID": key["clientid"],
        "AICORE_CERT_FILE_PATH": str(tmp_path / "cert.pem"),
        "AICORE_KEY_FILE_PATH": str(tmp_path / "key.pem"),
        "AICORE_CERT_URL": key["certurl"],
        "AICORE_BASE_URL": key["serviceurls"]["AI_API_URL"],
    }
    with SecretsAPI.from_env(environ=environ) as api:
        assert api.list(scope=RG) == []


@pytest.mark.parametrize("broken", ["certificate", "key"])
def test_a_bad_certificate_or_key_is_a_clear_error_without_its_value(
    fake: FakeAICore, broken: str
) -> None:
    """A certificate or key that does not load names the source, never the text."""
    key = {**fake.service_key(x509=True), broken: f"-----BEGIN X-----\n{CANARY}\n"}
    with pytest.raises(AICoreError) as info:
        SecretsAPI.from_service_key(key)
    assert str(info.value) == (
        "the certificate and key of the service key could not be loaded: not a PEM "
        "certificate chain and its unencrypted private key"
    )
    assert info.value.__context__ is None
    assert _memfds() == []


def test_an_x509_token_endpoint_must_be_https(fake: FakeAICore) -> None:
    """A certurl that is http:// is refused: mutual TLS needs TLS."""
    key = {**fake.service_key(x509=True), "certurl": fake.url}
    with pytest.raises(AICoreError, match=r"an X.509 token endpoint must be https:// \(certurl\)"):
        SecretsAPI.from_service_key(key)


# -- the token request's retries ------------------------------------------------------


class Scripted:
    """A token endpoint that answers from a script: (status, headers), then tokens."""

    def __init__(self, *script: tuple[int, dict[str, str]]):
        self.script = list(script)
        self.arrivals: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.arrivals.append(time.monotonic())
                status, headers = outer.script.pop(0) if outer.script else (200, {})
                body = b"{}"
                if status == 200:
                    body = json.dumps({"access_token": "tok", "expires_in": 3600}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth/token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for server in made:
        server.close()


def test_503_and_429_are_retried_honouring_retry_after(scripted: list[Scripted]) -> None:
    """A token request answered 503, then 429 with Retry-After: 0.5, is sent again, the
    third time no sooner than half a second after the second."""
    server = Scripted((503, {}), (429, {"Retry-After": "0.5"}))
    scripted.append(server)
    auth = ClientCredentials(server.url, "client", CANARY, backoff=0.01)
    assert auth.token() == "tok"
    assert len(server.arrivals) == 3
    assert server.arrivals[2] - server.arrivals[1] >= 0.5


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refusals_are_not_retried(scripted: list[Scripted], status: int) -> None:
    """400, 401 and 403 are answers, not failures: sent once, and no value in the error."""
    server = Scripted((status, {}))
    scripted.append(server)
    auth = ClientCredentials(server.url, "client", CANARY, backoff=0.01)
    with pytest.raises(APIError, match=r"the token request failed$") as info:
        auth.token()
    assert info.value.status == status
    assert len(server.arrivals) == 1
    assert CANARY not in str(info.value)


def test_retries_end_with_the_count(scripted: list[Scripted]) -> None:
    """After its retries, the last answer is the error, with the number of attempts."""
    server = Scripted(*[(502, {})] * 10)
    scripted.append(server)
    sleeps: list[float] = []
    auth = ClientCredentials(server.url, "c", CANARY, retries=2, sleep=sleeps.append)
    with pytest.raises(APIError, match=r"the token request failed \(3 attempts\)"):
        auth.token()
    assert len(server.arrivals) == 3
    assert len(sleeps) == 2


def test_connection_refused_is_retried() -> None:
    """A token endpoint that refuses connections is tried again, then reported."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{port}/oauth/token"
    auth = ClientCredentials(url, "c", CANARY, retries=3, sleep=sleeps.append)
    with pytest.raises(AICoreError) as info:
        auth.token()
    assert str(info.value) == "POST /oauth/token: ConnectError (4 attempts)"
    assert len(sleeps) == 3


def test_a_retry_after_beyond_the_deadline_ends_at_once(scripted: list[Scripted]) -> None:
    """A Retry-After longer than what is left of the deadline is not waited for."""
    server = Scripted((429, {"Retry-After": "60"}))
    scripted.append(server)
    auth = ClientCredentials(server.url, "c", CANARY, timeout=30.0)
    started = time.monotonic()
    with pytest.raises(APIError, match="429"):
        auth.token(deadline=time.monotonic() + 2.0)
    assert time.monotonic() - started < TIMEOUT
    assert len(server.arrivals) == 1


def test_a_passed_deadline_sends_nothing(scripted: list[Scripted]) -> None:
    """The caller's deadline (the attribute, a whole command's) bounds the token request."""
    server = Scripted()
    scripted.append(server)
    auth = ClientCredentials(server.url, "c", CANARY)
    auth.deadline = time.monotonic() - 1
    with pytest.raises(AICoreError, match="no token by the deadline"):
        auth.token()
    assert server.arrivals == []


def test_the_cli_rotates_with_an_x509_profile(fake: FakeAICore, tmp_path: Path) -> None:
    """secretwatch rotate with an X.509 key in $AICORE_HOME/config.json and its resource
    group as the scope: the token over mutual TLS, no value printed."""
    with SecretsAPI.from_service_key(fake.service_key()) as api:
        api.create("x509-rotated", data={"k": "old"}, scope=RG)
    key = fake.service_key(x509=True)
    config = {
        "AICORE_CLIENT_ID": key["clientid"],
        "AICORE_CERT_STR": key["certificate"],
        "AICORE_KEY_STR": key["key"],
        "AICORE_CERT_URL": key["certurl"],
        "AICORE_BASE_URL": key["serviceurls"]["AI_API_URL"],
        "AICORE_RESOURCE_GROUP": "default",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    done = aicore_cli(
        None,
        "rotate",
        "x509-rotated",
        "--set",
        f"k={CANARY}",
        AICORE_HOME=str(tmp_path),
        SSL_CERT_FILE=os.environ["SSL_CERT_FILE"],
    )
    assert done.returncode == 0, done.stderr
    assert fake.data("x509-rotated", scope="default") == {"k": CANARY.encode()}
    assert CANARY not in done.stdout + done.stderr
    explained = aicore_cli(
        None,
        "status",
        "--explain-credentials",
        AICORE_HOME=str(tmp_path),
        SSL_CERT_FILE=os.environ["SSL_CERT_FILE"],
    )
    assert "  method: X.509 certificate and key (text, loaded through an in-memory file)" in (
        explained.stdout
    )
    assert "  certificate and key: loaded (checked here; no request was sent)" in explained.stdout
    assert "BEGIN" not in explained.stdout


def test_an_encrypted_key_is_refused_without_asking_for_a_passphrase(
    certificates: MutualTLS, tmp_path: Path
) -> None:
    """An encrypted private key (SAP's keys never are) is refused at once, even on a
    terminal, where OpenSSL would otherwise ask for its passphrase and wait past any
    --timeout."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certificates.client_key.encode(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a passphrase"),
    ).decode()
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("AICORE_") and k != "VCAP_SERVICES"
    }
    environ |= {
        "AICORE_HOME": str(tmp_path),
        "AICORE_CLIENT_ID": "client",
        "AICORE_CERT_URL": "https://127.0.0.1:9",
        "AICORE_BASE_URL": "https://127.0.0.1:9",
        "AICORE_CERT_STR": certificates.client_chain,
        "AICORE_KEY_STR": encrypted,
    }
    controller, terminal = pty.openpty()

    def on_the_terminal() -> None:  # a session whose controlling terminal is the pty
        os.setsid()
        fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)

    command = [sys.executable, "-m", "secretwatch", "status", "--explain-credentials"]
    with subprocess.Popen(
        command,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=environ,
        preexec_fn=on_the_terminal,  # noqa: PLW1509 (no threads run in the child yet)
    ) as process:
        os.close(terminal)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("it waited on the terminal, for a passphrase")
        finally:
            said = _drain(controller)
            os.close(controller)
    assert code == 1, said
    assert "could not be loaded" in said
    assert "pass phrase" not in said.lower()
    assert "BEGIN" not in said


def _drain(descriptor: int) -> str:
    """What the pty's other side holds (the child has ended: EIO at its end)."""
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
