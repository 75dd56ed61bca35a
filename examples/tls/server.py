"""An HTTPS server whose certificate follows a mounted ``kubernetes.io/tls`` secret.

    python examples/tls/server.py /etc/tls [PORT]

``secretwatch.integrations.tls.server_context`` does the work: each new connection gets the
pair in force, ``tls.crt`` and ``tls.key`` always from one version; a new pair is loaded in a
scratch context first, and one that does not load (a key that does not match) is rejected
while the previous certificate goes on being served. The key is loaded from memory, never
written to a file. This program prints the certificate in force at start and after each
change, and each rejection.
"""

from __future__ import annotations

import hashlib
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog

import secretwatch
from secretwatch.integrations.tls import server_context


def fingerprint(snapshot: secretwatch.Snapshot) -> str:
    """A short name for the certificate in force (a hash of the PEM: it is public)."""
    return hashlib.sha256(snapshot.raw("tls.crt")).hexdigest()[:16]


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
    context = server_context(path)  # the latest valid pair for every new connection
    watcher = context.watcher
    watcher.subscribe(lambda change: print(f"serving certificate {fingerprint(change.new)}"))
    watcher.subscribe_errors(lambda error: print(f"rejected: {error}", flush=True))
    print(f"serving certificate {fingerprint(watcher.snapshot)}", flush=True)
    server = ThreadingHTTPServer(("127.0.0.1", port), Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    server.shutdown()
    context.close()


if __name__ == "__main__":
    # secretwatch's events on stderr, through structlog (else logging's "secretwatch" logger)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
