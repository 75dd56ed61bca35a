"""examples/serving: a Starlette model server under uvicorn, as a real process, follows 100
rotations of its upstream credential under load without a failed request."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

pytest.importorskip("uvicorn", reason="the examples extra is not installed")
pytest.importorskip("starlette", reason="the examples extra is not installed")

ROOT = Path(__file__).parent.parent


class Upstream:
    """The upstream API: records each call's credential and sequence number, answers 200."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                credential = self.headers["Authorization"].removeprefix("Bearer ")
                upstream.calls.put((int(sent["seq"]), credential))
                body = json.dumps({"score": 0.5}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/score"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@contextlib.contextmanager
def serving(volume: AtomicVolume, upstream: Upstream) -> Iterator[httpx.Client]:
    """The example under uvicorn as a real process; a client for it once it answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {**os.environ, "SECRET_DIR": str(volume.path), "UPSTREAM_URL": upstream.url}
    command = [sys.executable, "-m", "uvicorn", "examples.serving.app:app"]
    command += ["--fd", str(listener.fileno()), "--log-level", "warning"]
    with subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=[listener.fileno()]) as server:
        listener.close()  # the server has it now
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=TIMEOUT) as client:
                # the socket listens already: this waits in its backlog until the app is up
                assert client.get("/healthz").json() == {"secret_version": 1}
                yield client
        finally:
            server.terminate()
            server.wait(TIMEOUT)


ROTATIONS = 100


def test_under_load_every_request_after_a_swap_uses_the_new_credential(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Four clients call continuously while the secret rotates 100 times: no request fails,
    and every request that starts after a rotation is in force uses that credential or a
    newer one."""
    volume = AtomicVolume(tmp_path / "my-generic-secret")
    volume.write({"some-credential": "credential-1"})
    with serving(volume, upstream) as client:
        failures: list[str] = []
        sequence = itertools.count()
        stop = threading.Event()

        def keep_calling() -> None:
            with httpx.Client(base_url=client.base_url, timeout=TIMEOUT) as caller:
                while not stop.is_set():
                    response = caller.post("/v1/predict", json={"seq": next(sequence)})
                    if response.status_code != 200:
                        failures.append(str(response.status_code))

        callers = [threading.Thread(target=keep_calling) for _ in range(4)]
        for caller in callers:
            caller.start()
        cuts = [-1]  # cuts[n]: requests numbered above it start after credential n+1 is in force
        try:
            for n in range(2, ROTATIONS + 2):
                volume.write({"some-credential": f"credential-{n}"})
                deadline = time.monotonic() + TIMEOUT
                while client.get("/healthz").json()["secret_version"] != n:
                    # each answer is a real round trip: the swap is a moment away
                    assert time.monotonic() < deadline, f"rotation {n} not applied"
                cuts.append(next(sequence))
            calls = [upstream.calls.get(timeout=TIMEOUT)]
            while calls[-1][0] < cuts[-1] + 20:  # and some requests after the last swap
                calls.append(upstream.calls.get(timeout=TIMEOUT))
        finally:
            stop.set()
            for caller in callers:
                caller.join(TIMEOUT)
        while not upstream.calls.empty():
            calls.append(upstream.calls.get())

    stale = [
        (seq, credential)
        for seq, credential in calls
        if int(credential.rsplit("-", 1)[1]) < bisect.bisect_left(cuts, seq)
    ]
    print(f"requests served: {len(calls)}, rotations applied: {ROTATIONS}")
    assert failures == []
    assert stale == []
    assert len(calls) > ROTATIONS
