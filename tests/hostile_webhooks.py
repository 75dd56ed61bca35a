"""Hostile webhook servers on 127.0.0.1, written with sockets and threads, for sidecar tests.

Each serves every connection on a thread of its own until :meth:`HostileServer.close`. Their
pacing (a byte every half second) is the attack, not a way to synchronise: tests wait on
:attr:`HostileServer.connections` and :attr:`HostileServer.client_closed`.
"""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Self

import pytest

from .conftest import TIMEOUT

GIB = 1 << 30
_CHUNK = 1 << 16


class HostileServer:
    """A TCP server that hands each accepted connection to ``serve`` (TLS when ``tls``)."""

    def __init__(
        self, serve: Callable[[HostileServer, socket.socket], None], *, tls: ssl.SSLContext | None
    ):
        self._serve = serve
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.closing = threading.Event()  # set by close(): the attacks stop
        self.connections: queue.SimpleQueue[int] = queue.SimpleQueue()  # one per connection
        self.client_closed = threading.Event()  # a send failed: the client closed
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def url(self, path: str = "/reload") -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def connection(self, timeout: float = TIMEOUT) -> None:
        """Wait for the next connection; fails the test when none comes within ``timeout``."""
        try:
            self.connections.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no connection to the webhook server within {timeout} s")

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            number += 1
            thread = threading.Thread(target=self._handle, args=(connection, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, connection: socket.socket, number: int) -> None:
        connection.settimeout(TIMEOUT)  # no send nor read of these waits forever
        try:
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            self.connections.put(number)
            self._serve(self, connection)
        except OSError:  # the client went away
            self.client_closed.set()
        finally:
            connection.close()

    def close(self) -> None:
        self.closing.set()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        self._listener.close()
        for thread in self._threads:
            thread.join(TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_request_head(connection: socket.socket) -> None:
    """Read up to the end of the request's headers (the small JSON body may stay unread)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionResetError
        data += chunk


def trickle(server: HostileServer, connection: socket.socket) -> None:
    """A response that never ends: a status line, then a header one byte every 0.5 s."""
    read_request_head(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    connection.sendall(b"X-Trickle: ")
    while not server.closing.wait(0.5):
        connection.sendall(b"a")


def trickle_body(server: HostileServer, connection: socket.socket) -> None:
    """A 200 whose chunked body never ends: a byte every 0.5 s."""
    read_request_head(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not server.closing.wait(0.5):
        connection.sendall(b"1\r\na\r\n")


def silent(server: HostileServer, connection: socket.socket) -> None:
    """Accepts, reads the request, never answers."""
    read_request_head(connection)
    server.closing.wait()


def held(release: threading.Event, status: int) -> Callable[[HostileServer, socket.socket], None]:
    """Reads the request, holds it until ``release`` is set (a slow neighbour's reload, as
    long as the test wants), then answers ``status`` with an empty body."""

    def serve(server: HostileServer, connection: socket.socket) -> None:
        read_request_head(connection)
        release.wait(TIMEOUT)
        if server.closing.is_set():
            return
        connection.sendall(b"HTTP/1.1 %d Held\r\nContent-Length: 0\r\n\r\n" % status)

    return serve


def flood(*, chunked: bool) -> Callable[[HostileServer, socket.socket], None]:
    """A 200 with a 1 GiB body of zeros (declared by Content-Length, or chunked), sent as fast
    as the client reads it; a send that fails marks :attr:`HostileServer.client_closed`."""

    def serve(server: HostileServer, connection: socket.socket) -> None:
        read_request_head(connection)
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % GIB
        connection.sendall(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n")
        zeros = bytes(_CHUNK)
        if chunked:
            zeros = b"%x\r\n" % _CHUNK + zeros + b"\r\n"
        for _ in range(GIB // _CHUNK):
            if server.closing.is_set():
                return
            connection.sendall(zeros)
        if chunked:
            connection.sendall(b"0\r\n\r\n")

    return serve


class Unaccepting:
    """A listening socket that never accepts, its backlog filled: a new connection waits in
    the handshake (or, completed, is never answered)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.socket()
        self._listener.bind((host, port))
        self._listener.listen(0)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._fillers = []
        for _ in range(4):  # more than a backlog of 0 holds
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, self.port))
            self._fillers.append(filler)

    def url(self, path: str = "/reload") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        for sock in [*self._fillers, self._listener]:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def tls_server_context(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a new self-signed certificate for 127.0.0.1, and the
    certificate's file (what a client trusts, e.g. with SSL_CERT_FILE)."""
    from .certificates import self_signed

    certificate, key, _ = self_signed("127.0.0.1", ip="127.0.0.1")
    cert_file = tmp_path / "webhook-cert.pem"
    key_file = tmp_path / "webhook-key.pem"
    cert_file.write_bytes(certificate)
    key_file.write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
