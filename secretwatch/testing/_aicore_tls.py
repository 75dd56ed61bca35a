"""FakeAICore's second listener: its token endpoint over mutual TLS, for X.509 keys."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from secretwatch._memfd import in_memory

__all__ = ["MutualTLS", "certified"]


class MutualTLS:
    """The stand-in's second listener: https on 127.0.0.1, a client certificate required."""

    def __init__(
        self,
        handler: Any,
        server_tls: tuple[str, str, str],
        fields: dict[str, str],
    ):
        certificate, key, client_ca = server_tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # its own key in an in-memory file too
        with in_memory(f"{certificate}\n{key}".encode(), name="fake-aicore-tls") as (path,):
            context.load_cert_chain(path)
        context.load_verify_locations(cadata=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # the handshake in the request's thread, not in the accept loop
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._fields = fields
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def service_key_fields(self) -> dict[str, str]:
        return {**self._fields, "certurl": self.url}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def certified(handler: BaseHTTPRequestHandler) -> bool:
    """Whether the request came with a client certificate (over mutual TLS)."""
    connection = handler.connection
    return isinstance(connection, ssl.SSLSocket) and connection.getpeercert() is not None
