"""The sidecar's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from secretwatch._sidecar.metrics import Metrics

__all__ = ["StatusServer"]


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class StatusServer:
    """Serves health, readiness and metrics on ``(host, port)`` from a thread of its own.

    ``healthy()``: the watchers are running. ``ready()``: the first good load is done.
    Port 0 picks a free port; :attr:`address` tells which.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        metrics: Metrics,
    ):
        checks = {"/healthz": healthy, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # seconds a client may take to send its request

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif path in checks:
                    ok = checks[path]()
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"not ok\n")
                else:
                    self._reply(404, b"not found\n")

            def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds: not worth a log line each

        server_class = _IPv6Server if ":" in address[0] else ThreadingHTTPServer
        self._server = server_class(address, Handler)  # OSError: the port is taken, ...
        self._server.daemon_threads = True
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="secretwatch-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._closing = True
        if self._thread.is_alive():
            self._wake()
            self._thread.join(5)
        self._server.server_close()

    def _serve(self) -> None:
        # One request at a time, each waited for with no timeout: idle, the thread sleeps
        # (serve_forever would wake every poll_interval to look for a shutdown).
        while not self._closing:
            self._server.handle_request()

    def _wake(self) -> None:
        """Make the waiting handle_request() return, so that it sees the close: shutting the
        listening socket down wakes its poll (and any accept fails, which the server ignores)."""
        with contextlib.suppress(OSError):
            self._server.socket.shutdown(socket.SHUT_RDWR)
