"""The sidecar's HTTP endpoint: it answers, sleeps while idle, close() wakes it at once, and
slow or idle clients hold neither a thread each nor the probes."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from structlog.testing import LogCapture

from secretwatch._cli.sidecar import server as status
from secretwatch._cli.sidecar.metrics import Metrics
from secretwatch._cli.sidecar.server import StatusServer

from .conftest import TIMEOUT, events

PROBE_TIMEOUT = 2.0  # a probe answered later than this failed (the kubelet waits 1 s by default)
ANSWER_SIZE = 8 * 1024 * 1024
SLOW_CLIENTS = 200  # the review held 849 connections; 200 is plenty more than MAX_CONNECTIONS


@pytest.fixture
def server() -> Iterator[StatusServer]:
    """A started server on 127.0.0.1: healthy, not ready."""
    server = StatusServer(("127.0.0.1", 0), healthy=lambda: True, ready=bool, metrics=Metrics())
    server.start()
    yield server
    server.close()


def _probe(server: StatusServer) -> int:
    """The status of ``GET /healthz`` by httpx, as a probe would ask."""
    url = f"http://127.0.0.1:{server.address[1]}/healthz"
    return httpx.get(url, timeout=PROBE_TIMEOUT).status_code


def _exchange(server: StatusServer, request: bytes) -> bytes:
    """Everything the server sends for ``request`` on a new connection, up to its close
    (so once this returns, the server has closed its end)."""
    with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _slow_clients(server: StatusServer, count: int) -> list[socket.socket]:
    """``count`` connections that each send the first byte of a request and nothing more."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(server.address, timeout=TIMEOUT)
        client.sendall(b"G")
        clients.append(client)
    return clients


def _closed_by_server(client: socket.socket) -> bool:
    """Whether the server closed ``client``'s connection (it reads the end, or a reset),
    waiting up to TIMEOUT for it."""
    client.settimeout(TIMEOUT)
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _fd_numbers() -> list[int]:
    return [int(name) for name in os.listdir("/proc/self/fd")]


def _fds() -> int:
    return len(_fd_numbers())


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::"])  # every interface, v4 and v6
def test_close_wakes_the_waiting_server(host: str) -> None:
    """The server thread waits for a request with no timeout (no polling while idle), so
    close() has to wake it: the thread has ended when close() returns, and the port is free."""
    try:
        server = StatusServer((host, 0), healthy=lambda: True, ready=bool, metrics=Metrics())
    except OSError as exc:  # no IPv6 here
        pytest.skip(f"cannot listen on {host}: {exc.strerror}")
    server.start()
    url = f"http://{'[::1]' if ':' in host else '127.0.0.1'}:{server.address[1]}"
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 503
    server.close()
    assert not server._thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")
    server.close()  # again: nothing left to do


def test_close_before_start() -> None:
    """A server that never started closes without waiting for a thread."""
    server = StatusServer(("127.0.0.1", 0), healthy=bool, ready=bool, metrics=Metrics())
    server.close()
    assert not server._thread.is_alive()


def test_the_idle_server_thread_does_not_wake(server: StatusServer) -> None:
    """Idle, the server's thread sleeps until a connection comes: over a second it is
    switched in at most once (going back to sleep after the last answer), where a loop
    polling 10 times a second would be 10 times."""
    assert _probe(server) == 200
    status_file = Path(f"/proc/self/task/{server._thread.native_id}/status")

    def switches() -> int:
        lines = status_file.read_text().splitlines()
        return int(next(line for line in lines if line.startswith("voluntary")).split()[1])

    before = switches()
    threading.Event().wait(1.0)  # the window observed, not a synchronisation
    assert switches() - before <= 1


def test_slow_clients_hold_no_threads_and_delay_no_probe(server: StatusServer) -> None:
    """Hundreds of clients that send one byte and go quiet cost no thread each, the server
    keeps at most MAX_CONNECTIONS of them, and every probe made meanwhile is answered."""
    assert _probe(server) == 200
    threads, fds = threading.active_count(), _fds()
    clients = _slow_clients(server, SLOW_CLIENTS)
    try:
        for _ in range(5):
            assert _probe(server) == 200  # accepted after every slow client: all are in
        assert threading.active_count() == threads
        assert _fds() - fds <= SLOW_CLIENTS + status.MAX_CONNECTIONS  # theirs + the server's
    finally:
        for client in clients:
            client.close()


def test_one_connection_too_many_closes_the_oldest(server: StatusServer) -> None:
    """With MAX_CONNECTIONS clients holding connections, the next one is answered and the
    oldest client (the slowest to send its request) is dropped; the others stay."""
    clients = _slow_clients(server, status.MAX_CONNECTIONS)
    try:
        assert _status(_exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")) == 200
        assert _closed_by_server(clients[0])
        clients[1].setblocking(False)
        with pytest.raises(BlockingIOError):  # open, nothing to read
            clients[1].recv(1)
    finally:
        for client in clients:
            client.close()


def test_a_trickling_client_is_cut_off_at_the_deadline(server: StatusServer) -> None:
    """A client sending its request a byte every 0.2 s (each read well within any per-read
    timeout) is disconnected once REQUEST_TIMEOUT has passed in all, unanswered."""
    client = socket.create_connection(server.address, timeout=TIMEOUT)
    stop = threading.Event()

    def trickle() -> None:
        head = itertools.chain(b"GET /healthz HTTP/1.1\r\nX-Slow: ", itertools.repeat(ord("a")))
        for byte in head:
            try:
                client.send(bytes([byte]))
            except OSError:  # cut off
                return
            if stop.wait(0.2):  # the attack's pace
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        client.settimeout(status.REQUEST_TIMEOUT + TIMEOUT)
        try:
            received = client.recv(1)
        except ConnectionResetError:
            received = b""
        assert received == b""
    finally:
        stop.set()
        thread.join()
        client.close()


def test_a_burst_of_connections_waits_in_the_backlog() -> None:
    """Connections made before the server takes any wait in the listen backlog (it was 5:
    the 7th connect stalled), and each is answered once the server runs."""
    server = StatusServer(("127.0.0.1", 0), healthy=lambda: True, ready=bool, metrics=Metrics())
    clients = []
    try:
        for _ in range(20):  # under MAX_CONNECTIONS: none is dropped
            client = socket.create_connection(server.address, timeout=TIMEOUT)
            client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            clients.append(client)
        server.start()
        for client in clients:
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
            assert _status(b"".join(chunks)) == 200
    finally:
        server.close()
        for client in clients:
            client.close()


def test_the_request_head_is_capped(server: StatusServer) -> None:
    """A request head of MAX_HEAD bytes is answered; one byte more gets 431 instead of a
    read of whatever the client cares to send."""
    start = b"GET /healthz HTTP/1.1\r\nX-Big: "
    for size, expected in [(status.MAX_HEAD, 200), (status.MAX_HEAD + 1, 431)]:
        head = start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"
        assert len(head) == size
        assert _status(_exchange(server, head)) == expected


def test_methods_paths_and_malformed_requests(server: StatusServer) -> None:
    """GET and HEAD are answered with a Content-Length (HEAD without the body); another
    method gets 405, an unknown path 404, a request line that is not HTTP 400."""
    got = _exchange(server, b"GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 3\r\n" in got
    assert b"\r\nConnection: close\r\n" in got
    assert got.endswith(b"\r\n\r\nok\n")
    head = _exchange(server, b"HEAD /readyz HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nContent-Length: 7\r\n" in head
    assert head.endswith(b"\r\n\r\n")
    posted = _exchange(server, b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert _status(posted) == 405
    assert b"\r\nAllow: GET, HEAD\r\n" in posted
    assert _status(_exchange(server, b"GET /nothing HTTP/1.1\r\n\r\n")) == 404
    assert _status(_exchange(server, b"hello\r\n\r\n")) == 400
    assert _status(_exchange(server, b"GET /healthz HTTP/1.1\n\n")) == 200  # bare LF


def test_close_drops_slow_clients_at_once(server: StatusServer) -> None:
    """close() does not wait for clients that never finish their request: the thread has
    ended when it returns, and every such client reads the end of its connection."""
    clients = _slow_clients(server, 10)
    try:
        assert _probe(server) == 200  # accepted after the slow clients: they are all in
        server.close()
        assert not server._thread.is_alive()
        assert all(_closed_by_server(client) for client in clients)
    finally:
        for client in clients:
            client.close()


def test_descriptors_are_released_when_clients_leave(server: StatusServer) -> None:
    """Once slow clients hang up, the server holds none of their descriptors."""
    probe = b"GET /healthz HTTP/1.0\r\n\r\n"
    assert _status(_exchange(server, probe)) == 200
    fds = _fds()
    clients = _slow_clients(server, 20)
    assert _status(_exchange(server, probe)) == 200  # accepted after them: all are in
    for client in clients:
        client.close()
    assert _status(_exchange(server, probe)) == 200  # their hang-ups were ready before it
    assert _fds() == fds


def test_a_failing_check_answers_500_and_the_server_goes_on(logs: LogCapture) -> None:
    """A check that raises gets its probe a 500 (logged by the exception's type, not its
    message) and does not stop the server."""
    calls = itertools.count()

    def flaky() -> bool:
        if next(calls) == 0:
            raise RuntimeError("the first call fails")
        return True

    server = StatusServer(("127.0.0.1", 0), healthy=flaky, ready=bool, metrics=Metrics())
    server.start()
    try:
        assert _probe(server) == 500
        assert _probe(server) == 200
    finally:
        server.close()
    [failed] = events(logs, "secretwatch.status_failed")
    assert (failed["path"], failed["error"]) == ("/healthz", "RuntimeError")
    assert "the first call fails" not in repr(logs.entries)


class _LargeMetric(Collector):
    """A metric whose help text is ANSWER_SIZE bytes: an answer larger than the socket
    buffers (the kernel's send buffer grows to 4 MiB by default)."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("large", "x" * ANSWER_SIZE, value=1)


def test_a_large_answer_is_sent_whole_as_the_client_takes_it() -> None:
    """An answer larger than the socket buffers is sent as the client takes it, in full and
    with the Content-Length it announced."""
    metrics = Metrics()
    metrics.registry.register(_LargeMetric())
    server = StatusServer(("127.0.0.1", 0), healthy=bool, ready=bool, metrics=metrics)
    server.start()
    try:
        response = _exchange(server, b"GET /metrics HTTP/1.1\r\n\r\n")
    finally:
        server.close()
    head, body = response.split(b"\r\n\r\n", 1)
    assert len(body) > ANSWER_SIZE
    assert f"\r\nContent-Length: {len(body)}\r\n".encode() in head


def test_out_of_descriptors_the_server_pauses_instead_of_spinning(server: StatusServer) -> None:
    """With the process out of descriptors, a waiting connection can't be taken: the server
    stops accepting for a while (logged) instead of waking for it again and again, and
    answers it once descriptors are free again."""
    client = (  # another process: its descriptors are its own
        "import socket, sys; sys.stdin.readline(); "
        f"s = socket.create_connection({server.address!r}, timeout={TIMEOUT}); "
        "s.sendall(b'GET /healthz HTTP/1.0\\r\\n\\r\\n'); "
        "print(s.makefile('rb').readline().decode().strip(), flush=True)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", client], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    logged: queue.SimpleQueue[dict[str, object]] = queue.SimpleQueue()

    def collect(logger: object, method: str, entry: dict[str, object]) -> dict[str, object]:
        logged.put(entry)
        raise structlog.DropEvent

    structlog.configure(processors=[collect])
    stat = os.open(f"/proc/self/task/{server._thread.native_id}/stat", os.O_RDONLY)

    def cpu_ticks() -> int:  # read again in place: no descriptor needed
        fields = os.pread(stat, 4096, 0).rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(_fd_numbers()) + 1, hard))
        with contextlib.suppress(OSError):  # the lower numbers still free
            while True:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        entry = logged.get(timeout=TIMEOUT)
        assert entry["event"] == "secretwatch.status_paused"
        before = cpu_ticks()
        threading.Event().wait(0.5)  # the window observed, not a synchronisation
        spent = cpu_ticks() - before
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        os.close(stat)
    assert spent <= 5  # ticks of 10 ms: a thread spinning would take most of the 50
    answered, _ = child.communicate(timeout=TIMEOUT)
    assert answered == b"HTTP/1.1 200 OK\n"
