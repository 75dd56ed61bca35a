"""The sidecar's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``.

One thread serves every connection, waiting on all of them at once (``selectors``): a slow
or idle client costs a descriptor and a few KiB, never a thread, and can't hold up a probe.
Idle, the thread waits with no timeout (nothing polls); :meth:`StatusServer.close` wakes it
through a pipe, whatever the address family. The bounds:

- at most :data:`MAX_CONNECTIONS` connections at once. One more is accepted and the oldest
  is closed: the client slowest to send its request or to take its answer. A probe sends
  its request as it connects, so it is answered however many slow clients keep connecting;
- :data:`REQUEST_TIMEOUT` seconds in all, from the connection to the end of the answer (not
  per read: a client trickling a byte at a time is cut off like a silent one);
- :data:`MAX_HEAD` bytes of request head (431 beyond);
- a listen backlog of :data:`BACKLOG`, so that a burst of connections waits its turn.

One request per connection, answered with ``Connection: close`` and a ``Content-Length``;
GET and HEAD (another method gets 405).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST

from secretwatch._cli.sidecar.metrics import Metrics
from secretwatch._log import log as _log

__all__ = ["BACKLOG", "MAX_CONNECTIONS", "MAX_HEAD", "REQUEST_TIMEOUT", "StatusServer"]

MAX_CONNECTIONS = 32
"""Connections served at once; one more closes the oldest."""
REQUEST_TIMEOUT = 5.0
"""Seconds a client has, in all, to send its request head and take the answer."""
MAX_HEAD = 8 * 1024
"""Bytes of request head (request line and headers) read at most."""
BACKLOG = 128
"""Connections the kernel holds for the server to accept."""

_ACCEPT_PAUSE = 1.0  # seconds without accepting when out of descriptors (not to spin)
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_CLOSE_TIMEOUT = 5.0  # seconds close() waits for the thread (a check or render is quick)
_READ_SIZE = 4096


class _Connection:
    """One client: what it sent so far, the answer left to send, its deadline."""

    __slots__ = ("answer", "deadline", "received", "sock")

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.received = bytearray()
        self.answer: memoryview | None = None  # once the request head is in


class StatusServer:
    """Serves health, readiness and metrics on ``(host, port)`` from a thread of its own.

    ``healthy()``: the watchers are running. ``ready()``: the first good load is done.
    Port 0 picks a free port; :attr:`address` tells which. The socket listens from the
    constructor on (``OSError``: the port is taken, ...); :meth:`start` serves.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        metrics: Metrics,
    ):
        self._checks = {b"/healthz": healthy, b"/readyz": ready}
        self._metrics = metrics
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)  # "::" takes IPv4 too
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(address)
            self._socket.listen(BACKLOG)
        except OSError:
            self._socket.close()
            raise
        self._socket.setblocking(False)
        self._address = self._socket.getsockname()[:2]
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        # poll(), not epoll: no descriptor of its own, and it watches a few dozen at most
        self._selector = selectors.PollSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._selector.register(self._socket, selectors.EVENT_READ)
        self._connections: dict[socket.socket, _Connection] = {}  # the oldest first
        self._accept_paused_until: float | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="secretwatch-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on."""
        host, port = self._address
        return str(host), int(port)

    def start(self) -> None:
        """Serve from a background thread."""
        if not self._closing:
            self._thread.start()

    def close(self) -> None:
        """Stop serving: close every connection and the socket."""
        if self._closing:
            return
        self._closing = True
        if self._thread.ident is None:  # never started
            self._stop_serving()
        elif self._thread.is_alive():
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending already
                os.write(self._wake_write, b"\0")
            self._thread.join(_CLOSE_TIMEOUT)  # it stops serving as it ends
            if self._thread.is_alive():
                return  # stuck in a check: it may still wait on the pipe
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _serve(self) -> None:
        try:
            while not self._closing:
                for key, _ in self._selector.select(self._timeout()):
                    if key.fileobj is self._socket:
                        self._accept()
                    elif isinstance(key.data, _Connection):
                        self._advance(key.data)
                self._expire()
        finally:
            self._stop_serving()

    def _timeout(self) -> float | None:
        """Seconds until the next deadline; ``None`` (wait for ever) when there is none."""
        deadlines = [connection.deadline for connection in self._connections.values()]
        if self._accept_paused_until is not None:
            deadlines.append(self._accept_paused_until)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _accept(self) -> None:
        """Take one connection (then the others get their turn), closing the oldest when
        there are MAX_CONNECTIONS already."""
        try:
            sock, _ = self._socket.accept()
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self._make_room(exc)
            return  # else the client left before it was taken
        sock.setblocking(False)
        if len(self._connections) >= MAX_CONNECTIONS:
            self._drop(next(iter(self._connections.values())))
        connection = _Connection(sock, time.monotonic() + REQUEST_TIMEOUT)
        self._connections[sock] = connection
        self._selector.register(sock, selectors.EVENT_READ, connection)

    def _make_room(self, exc: OSError) -> None:
        """Out of descriptors (or memory): drop the oldest connection; with none to drop,
        stop accepting for a while (the waiting connection would wake the thread at once,
        again and again)."""
        if self._connections:
            self._drop(next(iter(self._connections.values())))
            return
        _log.warning("secretwatch.status_paused", error=exc.strerror, seconds=_ACCEPT_PAUSE)
        self._selector.unregister(self._socket)
        self._accept_paused_until = time.monotonic() + _ACCEPT_PAUSE

    def _expire(self) -> None:
        """Drop the connections past their deadline; accept again after a pause."""
        now = time.monotonic()
        for connection in [c for c in self._connections.values() if c.deadline <= now]:
            self._drop(connection)
        if self._accept_paused_until is not None and self._accept_paused_until <= now:
            self._accept_paused_until = None
            self._selector.register(self._socket, selectors.EVENT_READ)

    def _advance(self, connection: _Connection) -> None:
        """Read what the client sent, or send it what is left of its answer."""
        if self._connections.get(connection.sock) is not connection:
            return  # dropped earlier in this round
        try:
            if connection.answer is None:
                self._receive(connection)
            if connection.answer is not None:  # send at once; the rest when it can be
                self._send(connection)
        except OSError:  # reset by the client, ...
            self._drop(connection)

    def _receive(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        if not data:  # the client went away
            self._drop(connection)
            return
        connection.received += data
        end = _head_end(connection.received)
        if end is None and len(connection.received) <= MAX_HEAD:
            return  # more to come
        if end is None or end > MAX_HEAD:
            answer = _response(431, b"request head too large\n")
        else:
            answer = self._answer(bytes(connection.received[:end]))
        connection.answer = memoryview(answer)

    def _send(self, connection: _Connection) -> None:
        assert connection.answer is not None
        try:
            sent = connection.sock.send(connection.answer)
        except BlockingIOError:
            sent = 0
        connection.answer = connection.answer[sent:]
        if not connection.answer:
            self._drop(connection)  # answered: Connection: close
        else:  # the rest once the client takes some
            self._selector.modify(connection.sock, selectors.EVENT_WRITE, connection)

    def _answer(self, head: bytes) -> bytes:
        """The response to a complete request head."""
        words = head.split(b"\n", 1)[0].split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/"):
            return _response(400, b"bad request\n")
        method, target = words[0], words[1]
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"method not allowed\n", allow="GET, HEAD")
        path = target.split(b"?", 1)[0]
        try:
            status, body, kind = self._route(path)
        except Exception as exc:  # a check or the metrics failed: say so, and go on serving
            _log.error(
                "secretwatch.status_failed", path=path.decode("latin-1"), error=type(exc).__name__
            )
            status, body, kind = 500, b"internal error\n", "text/plain"
        return _response(status, body, kind, with_body=method == b"GET")

    def _route(self, path: bytes) -> tuple[int, bytes, str]:
        if path == b"/metrics":
            return 200, self._metrics.render(), CONTENT_TYPE_LATEST
        check = self._checks.get(path)
        if check is None:
            return 404, b"not found\n", "text/plain"
        if check():
            return 200, b"ok\n", "text/plain"
        return 503, b"not ok\n", "text/plain"

    def _drop(self, connection: _Connection) -> None:
        del self._connections[connection.sock]
        self._selector.unregister(connection.sock)
        connection.sock.close()

    def _stop_serving(self) -> None:
        """Close every connection, the selector and the socket (close() closes the pipe)."""
        for connection in list(self._connections.values()):
            self._drop(connection)
        self._selector.close()
        self._socket.close()


def _head_end(received: bytearray) -> int | None:
    """Where the request head ends (after its blank line, CRLF or bare LF), if it does."""
    ends = [
        at + len(blank) for blank in (b"\r\n\r\n", b"\n\n") if (at := received.find(blank)) >= 0
    ]
    return min(ends, default=None)


def _response(
    status: int,
    body: bytes,
    kind: str = "text/plain",
    *,
    with_body: bool = True,
    allow: str | None = None,
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Content-Type: {kind}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if allow is not None:
        lines.append(f"Allow: {allow}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if with_body else head
