"""secretwatch.integrations.tls over real TLS on 127.0.0.1: http.server and asyncio servers
serve the rotated pair to new connections, a bad pair keeps the old one, client
certificates are verified with a followed CA, and no key is written to a file."""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import LogCapture

from secretwatch import SecretWatchError
from secretwatch.integrations.tls import (
    FollowingClientContext,
    FollowingContext,
    client_context,
    server_context,
)
from secretwatch.testing import AtomicVolume

from .certificates import MutualTLS, mutual_tls, self_signed
from .conftest import TIMEOUT

CANARY = "CANARY-tls-key-5d1c"


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https(context_holder: list[FollowingContext]) -> Iterator[int]:
    """A ThreadingHTTPServer on 127.0.0.1 serving with the test's context; its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context_holder[0].wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        server.server_close()
        context_holder[0].close()


@pytest.fixture
def context_holder() -> list[FollowingContext]:
    return []


def client(**load: str) -> ssl.SSLContext:
    """A client that accepts any server certificate (we compare it), with a client pair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if load:
        context.load_cert_chain(load["cert"], load["key"])
    return context


def served(port: int, context: ssl.SSLContext | None = None) -> bytes:
    """The DER certificate a new connection sees, after a whole HTTP exchange."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        (context or client()).wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert tls.recv(1024).startswith(b"HTTP/1.0 200")
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def rotate(
    context: FollowingContext | FollowingClientContext,
    volume: AtomicVolume,
    payload: dict[str, bytes],
) -> None:
    """Write ``payload`` and wait until the watcher applied it."""
    seen = context.watcher.snapshot.version
    volume.write(payload)
    assert context.watcher.wait_for_change(TIMEOUT, since=seen) is not None


def rejected(
    context: FollowingContext | FollowingClientContext,
    volume: AtomicVolume,
    payload: dict[str, bytes],
) -> str:
    """Write ``payload`` and wait for its rejection; the error's text."""
    errors: queue.Queue[SecretWatchError] = queue.Queue()
    subscription = context.watcher.subscribe_errors(errors.put)
    try:
        volume.write(payload)
        return str(errors.get(timeout=TIMEOUT))
    finally:
        subscription.cancel()


def memfds() -> list[str]:
    """This process's open in-memory files made by the integration."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if "secretwatch-tls" in target:
            found.append(target)
    return found


def test_http_server_serves_each_rotation_and_keeps_the_old_pair_on_a_bad_one(
    tmp_path: Path, context_holder: list[FollowingContext], request: pytest.FixtureRequest
) -> None:
    """New connections get each applied pair; a mismatched pair is rejected with last_error
    naming the keys, and the previous certificate is still served."""
    first_crt, first_key, first_der = self_signed("first")
    second_crt, second_key, second_der = self_signed("second")
    third_crt, _, _ = self_signed("third")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": first_crt, "tls.key": first_key})
    context_holder.append(server_context(volume.path))
    port = request.getfixturevalue("https")
    context = context_holder[0]
    assert served(port) == first_der

    rotate(context, volume, {"tls.crt": second_crt, "tls.key": second_key})
    assert served(port) == second_der

    message = rejected(context, volume, {"tls.crt": third_crt, "tls.key": second_key})
    assert "tls.crt and tls.key are not a PEM certificate chain" in message
    assert context.watcher.last_error is not None
    assert served(port) == second_der
    assert memfds() == []


def test_asyncio_server_follows_rotations(tmp_path: Path) -> None:
    """asyncio.start_server with the context hands each new connection the latest pair."""
    pairs = [self_signed(name) for name in ("one", "two", "three")]
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": pairs[0][0], "tls.key": pairs[0][1]})
    context = server_context(volume.path)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await writer.drain()
        writer.close()

    async def peer(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client())
        assert await reader.read() == b"hi"
        certificate = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return bytes(certificate)

    async def scenario() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        async with server:
            assert await peer(port) == pairs[0][2]
            for crt, key, der in pairs[1:]:
                await asyncio.to_thread(rotate, context, volume, {"tls.crt": crt, "tls.key": key})
                assert await peer(port) == der

    try:
        asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    finally:
        context.close()


def test_client_certificates_are_verified_with_the_followed_ca_of_the_volume(
    tmp_path: Path, context_holder: list[FollowingContext], request: pytest.FixtureRequest
) -> None:
    """With ca="ca.crt", a client certificate of that CA is accepted, none is refused, and
    after the volume's CA rotates the old CA's client is refused."""
    old, new = mutual_tls(), mutual_tls()
    volume = AtomicVolume(tmp_path / "tls")

    def payload(bundle: MutualTLS) -> dict[str, bytes]:
        return {
            "tls.crt": bundle.server_certificate.encode(),
            "tls.key": bundle.server_key.encode(),
            "ca.crt": bundle.ca.encode(),
        }

    volume.write(payload(old))
    context_holder.append(server_context(volume.path, ca="ca.crt"))
    port = request.getfixturevalue("https")
    old_client = client_pair(tmp_path / "old", old.client_chain, old.client_key)
    new_client = client_pair(tmp_path / "new", new.client_chain, new.client_key)
    served(port, old_client)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served(port)  # no client certificate
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served(port, new_client)

    rotate(context_holder[0], volume, payload(new))
    served(port, new_client)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served(port, old_client)


def test_a_ca_at_another_path_is_followed(tmp_path: Path) -> None:
    """ca=<another volume>: the client CA rotates there, and a bad CA there is rejected."""
    old, new = mutual_tls(), mutual_tls()
    tls = AtomicVolume(tmp_path / "tls")
    tls.write({"tls.crt": old.server_certificate.encode(), "tls.key": old.server_key.encode()})
    cas = AtomicVolume(tmp_path / "ca")
    cas.write({"ca.crt": old.ca.encode()})
    context = server_context(tls.path, ca=cas.path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        port = server.server_address[1]
        old_client = client_pair(tmp_path / "old", old.client_chain, old.client_key)
        new_client = client_pair(tmp_path / "new", new.client_chain, new.client_key)
        served(port, old_client)
        assert context.ca_watcher is not None
        seen = context.ca_watcher.snapshot.version
        cas.write({"ca.crt": new.ca.encode()})
        assert context.ca_watcher.wait_for_change(TIMEOUT, since=seen) is not None
        served(port, new_client)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            served(port, old_client)

        errors: queue.Queue[SecretWatchError] = queue.Queue()
        context.ca_watcher.subscribe_errors(errors.put)
        cas.write({"ca.crt": b"not a certificate"})
        assert "the CA path holds no PEM CA certificates" in str(errors.get(timeout=TIMEOUT))
        served(port, new_client)
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        server.server_close()
        context.close()
    assert not context.watcher.running
    assert not context.ca_watcher.running


def client_pair(directory: Path, chain: str, key: str) -> ssl.SSLContext:
    """A client presenting ``chain`` with ``key`` (the test's client writes files: only the
    server side is under test)."""
    directory.mkdir()
    (directory / "chain.pem").write_text(chain)
    (directory / "key.pem").write_text(key)
    return client(cert=str(directory / "chain.pem"), key=str(directory / "key.pem"))


def test_configure_applies_to_the_inner_contexts(
    tmp_path: Path, context_holder: list[FollowingContext], request: pytest.FixtureRequest
) -> None:
    """configure() reaches the context each handshake is switched to: ALPN is negotiated."""
    crt, key, _ = self_signed("alpn")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": crt, "tls.key": key})
    made: list[ssl.SSLContext] = []

    def configure(context: ssl.SSLContext) -> None:
        made.append(context)
        context.set_alpn_protocols(["secretwatch-test"])

    context_holder.append(server_context(volume.path, configure=configure))
    port = request.getfixturevalue("https")
    alpn = client()
    alpn.set_alpn_protocols(["secretwatch-test"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        alpn.wrap_socket(raw) as connection,
    ):
        assert connection.selected_alpn_protocol() == "secretwatch-test"
        assert connection.context is not context_holder[0]  # switched
    assert len(made) >= 3  # the listening context, validate's scratch one, the inner one


def test_no_key_file_is_written_and_the_key_never_shows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
    context_holder: list[FollowingContext],
    request: pytest.FixtureRequest,
) -> None:
    """Loading goes through in-memory files, closed at once (the temporary directory stays
    empty); a key that is not one is rejected without its text in errors, reprs or logs."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    crt, key, der = self_signed("private")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": crt, "tls.key": key})
    context_holder.append(server_context(volume.path))
    port = request.getfixturevalue("https")
    context = context_holder[0]
    assert served(port) == der
    bad = f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n".encode()
    message = rejected(context, volume, {"tls.crt": crt, "tls.key": bad})
    assert served(port) == der
    assert os.listdir(scratch) == []
    assert memfds() == []
    shown = [message, repr(context.watcher.last_error), repr(context.watcher), str(logs.entries)]
    assert all(CANARY not in text for text in shown)
    assert all(key.decode().splitlines()[1] not in text for text in shown)


def test_off_linux_a_private_temporary_directory_is_used_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without memfd_create the pair loads through a temporary directory, removed at once."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delattr(os, "memfd_create")
    crt, key, der = self_signed("fallback")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": crt, "tls.key": key})
    context = server_context(volume.path)
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            done = threading.Event()

            def accept() -> None:
                connection, _ = listener.accept()
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
                done.set()

            thread = threading.Thread(target=accept)
            thread.start()
            with (
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
                client().wrap_socket(raw) as tls,
            ):
                assert tls.getpeercert(binary_form=True) == der
            assert done.wait(TIMEOUT)
            thread.join(TIMEOUT)
    finally:
        context.close()
    assert os.listdir(scratch) == []


def test_a_first_pair_that_does_not_load_raises(tmp_path: Path) -> None:
    """server_context refuses a volume whose first pair does not load, naming the keys."""
    crt, _, _ = self_signed("lonely")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": crt, "tls.key": f"{CANARY}\n".encode()})
    with pytest.raises(SecretWatchError) as caught:
        server_context(volume.path)
    assert "tls.crt and tls.key" in str(caught.value)
    assert CANARY not in str(caught.value)
    volume.write({"tls.crt": crt})
    with pytest.raises(SecretWatchError, match=r"no tls\.key in the volume"):
        server_context(volume.path)


class _WhoAmI(BaseHTTPRequestHandler):
    """Answers with the SHA-256 of the client certificate of the connection (kept alive)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        certificate = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        body = hashlib.sha256(certificate).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def leaf_fingerprint(chain: str) -> str:
    """The SHA-256 of the first certificate of a PEM chain (its DER form)."""
    first = chain.split("-----END CERTIFICATE-----", maxsplit=1)[0] + "-----END CERTIFICATE-----\n"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


@dataclass
class Mutual:
    """A mutual-TLS server on ``port`` trusting the ``old`` client CA, and the client's
    ``volume`` holding the old client pair and the server's CA."""

    port: int
    old: MutualTLS
    new: MutualTLS
    volume: AtomicVolume
    server: FollowingContext
    server_volume: AtomicVolume

    def client_payload(self, chain: str, key: str) -> dict[str, bytes]:
        return {"tls.crt": chain.encode(), "tls.key": key.encode(), "ca.crt": self.old.ca.encode()}

    def rotate_client(self, client: FollowingClientContext) -> None:
        """The server trusts the new client CA (the two CAs have one name, so it can't
        trust both), then the client's volume gets the new pair, applied."""
        rotate(
            self.server,
            self.server_volume,
            {
                "tls.crt": self.old.server_certificate.encode(),
                "tls.key": self.old.server_key.encode(),
                "ca.crt": self.new.ca.encode(),
            },
        )
        rotate(client, self.volume, self.client_payload(self.new.client_chain, self.new.client_key))


@pytest.fixture
def mutual(tmp_path: Path) -> Iterator[Mutual]:
    """A :class:`Mutual` set-up, served until the test ends."""
    old, new = mutual_tls(), mutual_tls()
    server_volume = AtomicVolume(tmp_path / "server")
    server_volume.write(
        {
            "tls.crt": old.server_certificate.encode(),
            "tls.key": old.server_key.encode(),
            "ca.crt": old.ca.encode(),
        }
    )
    context = server_context(server_volume.path, ca="ca.crt")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WhoAmI)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    client_volume = AtomicVolume(tmp_path / "client")
    setup = Mutual(server.server_address[1], old, new, client_volume, context, server_volume)
    client_volume.write(setup.client_payload(old.client_chain, old.client_key))
    try:
        yield setup
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        server.server_close()
        context.close()


def test_an_httpx_client_presents_the_rotated_pair_on_new_connections(mutual: Mutual) -> None:
    """httpx with client_context: a kept-alive pooled connection keeps the old client
    certificate; a new connection (a new client) presents the rotated one."""
    context = client_context(mutual.volume.path, ca="ca.crt")
    url = f"https://127.0.0.1:{mutual.port}/"
    try:
        with httpx.Client(verify=context, timeout=TIMEOUT) as http:
            assert http.get(url).text == leaf_fingerprint(mutual.old.client_chain)
            mutual.rotate_client(context)
            assert http.get(url).text == leaf_fingerprint(mutual.old.client_chain)  # pooled
        with httpx.Client(verify=context, timeout=TIMEOUT) as http:
            assert http.get(url).text == leaf_fingerprint(mutual.new.client_chain)
    finally:
        context.close()


def test_an_async_httpx_client_follows_too_and_a_bad_pair_is_kept_out(mutual: Mutual) -> None:
    """httpx.AsyncClient (wrap_bio) presents the rotated pair; a mismatched one is rejected
    and the previous pair is still presented."""
    context = client_context(mutual.volume.path, ca="ca.crt")
    url = f"https://127.0.0.1:{mutual.port}/"

    async def fingerprint() -> str:
        async with httpx.AsyncClient(verify=context, timeout=TIMEOUT) as http:
            return (await http.get(url)).text

    try:
        assert asyncio.run(fingerprint()) == leaf_fingerprint(mutual.old.client_chain)
        mutual.rotate_client(context)
        assert asyncio.run(fingerprint()) == leaf_fingerprint(mutual.new.client_chain)
        bad = mutual.client_payload(mutual.old.client_chain, mutual.new.client_key)
        assert "tls.crt and tls.key are not" in rejected(context, mutual.volume, bad)
        assert asyncio.run(fingerprint()) == leaf_fingerprint(mutual.new.client_chain)
        assert memfds() == []
    finally:
        context.close()


def test_uvicorn_serves_the_rotated_pair_through_ssl_context_factory(tmp_path: Path) -> None:
    """uvicorn (Config's ssl_context_factory) serves each applied pair to new connections."""
    uvicorn = pytest.importorskip("uvicorn")
    pairs = [self_signed(name) for name in ("uvicorn-1", "uvicorn-2")]
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": pairs[0][0], "tls.key": pairs[0][1]})
    made: list[FollowingContext] = []

    def factory(config: object, default: object) -> ssl.SSLContext:
        made.append(server_context(volume.path))
        return made[0]

    async def app(scope: dict[str, object], receive: object, send: Any) -> None:
        assert scope["type"] == "http"
        assert scope["scheme"] == "https"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello\n"})

    listener = socket.create_server(("127.0.0.1", 0))  # connections wait in its backlog
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        ssl_context_factory=factory,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    port = listener.getsockname()[1]
    try:
        assert served_http11(port) == pairs[0][2]
        rotate(made[0], volume, {"tls.crt": pairs[1][0], "tls.key": pairs[1][1]})
        assert served_http11(port) == pairs[1][2]
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        listener.close()
        for context in made:
            context.close()
    assert not thread.is_alive()


def served_http11(port: int) -> bytes:
    """The DER certificate a new HTTP/1.1 connection sees, after a whole exchange."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        client().wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"\r\nhello\n" in answer  # the body (chunked)
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def inotify_instances() -> int:
    """How many inotify instances this process has open (a running watcher holds one)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify"
        except OSError:
            continue
    return count


def test_a_configure_that_raises_leaves_nothing_watching(tmp_path: Path) -> None:
    """server_context raises configure's error and starts no watcher (no inotify left open)."""
    crt, key, _ = self_signed("configured")
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": crt, "tls.key": key})
    before = inotify_instances()

    def configure(context: ssl.SSLContext) -> None:
        context.set_ciphers("NO-SUCH-CIPHER")

    with pytest.raises(ssl.SSLError):
        server_context(volume.path, configure=configure)
    assert inotify_instances() == before


def test_under_load_every_handshake_succeeds_and_none_after_a_swap_is_stale(
    tmp_path: Path, context_holder: list[FollowingContext], request: pytest.FixtureRequest
) -> None:
    """Four clients connect without pause through 20 rotations: no handshake fails, every
    connection sees one of the pairs written, and a connection that starts after a rotation
    was applied sees that pair or a later one."""
    pairs = [self_signed(f"pair-{n}") for n in range(21)]
    order = {der: n for n, (_, _, der) in enumerate(pairs)}
    volume = AtomicVolume(tmp_path / "tls")
    volume.write({"tls.crt": pairs[0][0], "tls.key": pairs[0][1]})
    context_holder.append(server_context(volume.path))
    port = request.getfixturevalue("https")
    context = context_holder[0]
    applied = [0]  # the index of the pair applied last, read by the clients before connecting
    stop = threading.Event()
    failures: list[str] = []
    seen = [0]

    def connect() -> None:
        while not stop.is_set():
            floor = applied[0]
            try:
                der = served(port)
            except (OSError, AssertionError) as exc:
                failures.append(type(exc).__name__)
                return
            if der not in order or order[der] < floor:
                failures.append(f"pair {order.get(der)} after pair {floor} was applied")
                return
            seen[0] += 1

    clients = [threading.Thread(target=connect) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        for n in range(1, 21):
            rotate(context, volume, {"tls.crt": pairs[n][0], "tls.key": pairs[n][1]})
            applied[0] = n
    finally:
        stop.set()
        for thread in clients:
            thread.join(TIMEOUT)
    assert failures == []
    assert seen[0] > 20
    assert served(port) == pairs[20][2]
