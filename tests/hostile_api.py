"""A hostile stand-in for the AI API on 127.0.0.1: it answers whatever a test tells it to,
byte for byte (wrong shapes, redirects, endless bodies, bodies cut short), over real sockets.

The token endpoint hands out a token unless told otherwise; PATCH and POST are accepted;
every other request is answered 404 unless a test gave an answer for it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

from .conftest import TIMEOUT

MiB = 1024 * 1024


@dataclass
class Answer:
    """What the server sends: a status, headers and a body, then it closes the connection.

    ``body`` is bytes, or a function giving the chunks to send. ``length`` is the
    ``Content-Length`` declared (by default the body's length; ``None`` with a function:
    chunked). ``finish=False`` leaves a chunked body without its last chunk.
    """

    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = -1
    finish: bool = True
    trickle_head: bool = False  # the status line and headers, a byte every 0.1 s


def json_answer(value: Any, status: int = 200) -> Answer:
    """``value`` as a JSON body."""
    return Answer(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


def endless(size: int, *, declared: bool) -> Answer:
    """A body of ``size`` bytes, ``{`` then JSON whitespace, sent 1 MiB at a time."""

    def chunks() -> Iterator[bytes]:
        yield b"{"
        left = size - 1
        block = b" " * MiB
        while left > 0:
            yield block[:left]
            left -= len(block)

    length = size if declared else None
    return Answer(200, chunks, {"Content-Type": "application/json"}, length=length)


class HostileAPI:
    """The server. ``answers[(method, path)]`` (the path without its query) is an
    :class:`Answer`; ``paths`` records every request's method and path."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {
            ("POST", "/oauth/token"): json_answer({"access_token": "tok", "expires_in": 3600}),
        }
        self.paths: list[tuple[str, str]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # close() ends the accept loop within this
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def service_key(self) -> dict[str, Any]:
        return {
            "clientid": "client",
            "clientsecret": "secret",
            "url": self.url,
            "serviceurls": {"AI_API_URL": self.url},
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closed.set()
        self._thread.join(TIMEOUT)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(TIMEOUT)
            reader = connection.makefile("rb")
            request_line = reader.readline().decode("latin-1").split()
            if len(request_line) < 2:
                return
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            reader.read(length)
            method, path = request_line[0], request_line[1].partition("?")[0]
            self.paths.append((method, path))
            answer = self.answers.get((method, path))
            if answer is None:
                answer = json_answer({"message": "ok"}) if method in ("PATCH", "POST") else None
            if answer is None:
                answer = json_answer({"error": {"code": "NotFound", "message": "no"}}, 404)
            with contextlib.suppress(OSError):  # the client hung up (on an endless body)
                _send(connection, answer)


def _send(connection: socket.socket, answer: Answer) -> None:
    chunked = callable(answer.body) and answer.length is None
    head = [f"HTTP/1.1 {answer.status} Hostile", "Connection: close"]
    head += [f"{name}: {value}" for name, value in answer.headers.items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    else:
        declared = len(answer.body) if answer.length == -1 else answer.length  # type: ignore[arg-type]
        head.append(f"Content-Length: {declared}")
    encoded = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    if not answer.trickle_head:
        connection.sendall(encoded)
    pause = threading.Event()
    for byte in encoded if answer.trickle_head else b"":  # the attack: each byte in time
        connection.sendall(bytes([byte]))
        pause.wait(0.1)
    chunks = answer.body() if callable(answer.body) else [answer.body]
    for chunk in chunks:
        if chunked:
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            connection.sendall(chunk)
    if chunked and answer.finish:
        connection.sendall(b"0\r\n\r\n")
