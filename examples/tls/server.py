"""An HTTPS server whose certificate follows a mounted ``kubernetes.io/tls`` secret.

    python examples/tls/server.py /etc/tls [PORT]

The secret's ``tls.crt`` and ``tls.key`` are one snapshot, so a certificate is never paired
with the key of another version. A new pair is loaded into a scratch ``SSLContext`` first
(in ``validate``): a pair that does not load (a key that does not match) is rejected, and
the server goes on serving the previous certificate. Each new connection gets the context
in force when it connects.
"""

from __future__ import annotations

import hashlib
import os
import signal
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog

import secretwatch


def load_pair(snapshot: secretwatch.Snapshot) -> ssl.SSLContext:
    """A server context from the snapshot's pair; ``ValidationError`` when it won't load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as scratch:  # load_cert_chain reads files
        paths = {}
        for key in ("tls.crt", "tls.key"):
            paths[key] = os.path.join(scratch, key)
            descriptor = os.open(paths[key], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(snapshot.raw(key))
        try:
            context.load_cert_chain(paths["tls.crt"], paths["tls.key"])
        except (ssl.SSLError, OSError):
            raise secretwatch.ValidationError(
                "tls.crt and tls.key are not a matching pair"
            ) from None
    return context


def fingerprint(snapshot: secretwatch.Snapshot) -> str:
    """A short name for the certificate in force (a hash of the PEM: it is public)."""
    return hashlib.sha256(snapshot.raw("tls.crt")).hexdigest()[:16]


class ReloadingTLS:
    """The serving context, swapped when a new, valid pair is applied."""

    def __init__(self, path: str):
        decoders: dict[str, secretwatch.DecoderSpec] = {"tls.*": "bytes"}
        self.watcher = secretwatch.watch(path, decoders=decoders, validate=load_pair)
        self._lock = threading.Lock()
        self.version = 0
        # subscribe before taking the first pair, so a rotation that lands meanwhile is
        # applied; _use keeps whichever of the two is newer
        self.watcher.subscribe(self._apply, keys={"tls.crt", "tls.key"})
        self.watcher.subscribe_errors(lambda error: print(f"rejected: {error}", flush=True))
        self._use(self.watcher.snapshot)

    def _apply(self, change: secretwatch.Change) -> None:
        self._use(change.new)  # validated already: load_pair succeeds on it

    def _use(self, snapshot: secretwatch.Snapshot) -> None:
        with self._lock:
            if snapshot.version <= self.version:
                return  # the newer pair is in force already
            self.current = load_pair(snapshot)
            self.version = snapshot.version
            print(f"serving certificate {fingerprint(snapshot)}", flush=True)

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context: it hands each handshake the context in force."""
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def switch(connection: ssl.SSLObject, server_name: str | None, _: object) -> None:
            connection.context = self.current

        base.sni_callback = switch  # type: ignore[assignment]
        return base


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello over TLS\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(path: str, port: int) -> None:
    tls = ReloadingTLS(path)
    server = ThreadingHTTPServer(("127.0.0.1", port), Hello)
    server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    server.shutdown()
    tls.watcher.stop()


if __name__ == "__main__":
    # secretwatch's events on stderr, through structlog (else logging's "secretwatch" logger)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
