"""The sidecar: from the kubelet's swap to the webhook request, memory over the rotations,
and the time from start to ready.

Subjects, each a process of its own: ``secretwatch watch VOLUME --webhook URL`` with its
defaults, and the floor of any Python sidecar, ``_webhook_floor.py``: one inotify watch on
the volume directory (ctypes) and, on each ``..data`` renamed into place, one POST with
``http.client`` on a new connection; no library. Each posts to a receiver of its own, an
HTTP server on 127.0.0.1 in this process that notes ``perf_counter_ns()`` as soon as a
request line is read. configmap-reload, the Go sidecar, can't be built here (no Go
toolchain); issue 16 records its figures.

Latency: each subject watches a volume of its own. Every round rotates each volume once,
in a random order, at random intervals of 50 to 150 ms: one subject reacts at a time (two
reacting at once would share two cores with each other), and the machine's drift falls on
all alike. A subject's latency for rotation ``n`` is the time from its commit to the first
request at or after it (``latency.latencies``, the request standing for a reload that reads
the volume then). Before measuring, each volume is rotated until its subject has posted.

Memory: RSS after the warm-up and after the measured rotations. Start to ready: from
``Popen`` to the sidecar's ``/readyz`` answering 200 (``--listen``; the floor: its
``ready`` line), the median of several starts, beside a bare interpreter's. Python's
bytecode of secretwatch is compiled first, as installing the wheel does (the environment may
say ``PYTHONDONTWRITEBYTECODE``).

Targets: secretwatch's p50 and p95 within 1.5x of the floor's; RSS flat over the rotations
(within 1 MiB of the RSS after the warm-up); start to ready under 300 ms.
"""

from __future__ import annotations

import bisect
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import IO, Any

from secretwatch.testing import AtomicVolume

from ._process import compile_secretwatch, free_port, sample, wait_ready
from ._targets import Target, row
from .latency import Reaction, latencies, percentiles

COLUMNS = [
    *((cut, lambda row, cut=cut: _figure(row, cut, "{:.2f} ms")) for cut in ("p50", "p95", "p99")),
    ("RSS after warm-up", lambda row: _figure(row, "rss_warm_mib", "{:.1f} MiB")),
    ("RSS after the rotations", lambda row: _figure(row, "rss_end_mib", "{:.1f} MiB")),
    ("start to ready", lambda row: _figure(row, "ready_ms", "{:.0f} ms")),
]

SECRETWATCH = "secretwatch watch --webhook (defaults)"
FLOOR = "inotify + http.client script (the floor)"
BARE = "python -c (a bare interpreter)"

LATENCY_RATIO = 1.5
RSS_ALLOWANCE_MIB = 1.0
READY_MS = 300.0

_FLOOR_SCRIPT = Path(__file__).with_name("_webhook_floor.py")


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """p50 and p95 within 1.5x of the floor's, RSS flat, start to ready under 300 ms."""
    mine, floor = row(rows, SECRETWATCH), row(rows, FLOOR)
    found: list[Target] = []
    for cut in ("p50", "p95"):
        ratio = mine[cut] / floor[cut]
        measured = f"{mine[cut]:.2f} ms against {floor[cut]:.2f} ms ({ratio:.2f}x)"
        found.append(
            (f"{cut} within {LATENCY_RATIO}x of the floor's", measured, ratio <= LATENCY_RATIO)
        )
    grown = mine["rss_end_mib"] - mine["rss_warm_mib"]
    found.append(
        (
            f"RSS flat over {mine['rotations']} rotations (within {RSS_ALLOWANCE_MIB:.0f} MiB)",
            f"{grown:+.2f} MiB",
            grown <= RSS_ALLOWANCE_MIB,
        )
    )
    found.append(
        (
            f"start to ready under {READY_MS:.0f} ms",
            f"{mine['ready_ms']:.0f} ms (median of {mine['starts']}; "
            f"{mine['ready_min_ms']:.0f} to {mine['ready_max_ms']:.0f} ms)",
            mine["ready_ms"] < READY_MS,
        )
    )
    return found


def _figure(row: dict[str, Any], key: str, form: str) -> str:
    return "" if row.get(key) is None else form.format(row[key])


class Receiver:
    """A webhook endpoint on 127.0.0.1, served on a thread of its own, one request at a
    time: notes when each request's first line has been read, answers 200."""

    def __init__(self) -> None:
        self.arrivals: list[int] = []  # perf_counter_ns()
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def parse_request(self) -> bool:
                receiver.arrived(time.perf_counter_ns())  # the request line is read
                return super().parse_request()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/-/reload"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def arrived(self, when: int) -> None:
        with self._arrived:
            self.arrivals.append(when)
            self._arrived.notify_all()

    def wait_after(self, committed: int, timeout: float) -> bool:
        """Whether a request arrives at or after ``committed`` within ``timeout`` seconds."""
        with self._arrived:
            return self._arrived.wait_for(
                lambda: bool(self.arrivals) and self.arrivals[-1] >= committed, timeout
            )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@dataclass
class Subject:
    """A sidecar under test: its volume, its receiver, its process, what it was sent."""

    name: str
    volume: AtomicVolume
    receiver: Receiver
    pid: int = 0  # once started
    rotation: int = 0
    commits: dict[int, int] = field(default_factory=dict)  # rotation -> perf_counter_ns()

    def rotate(self, measured: bool) -> int:
        """Write the next version; its commit time."""
        self.rotation += 1
        self.volume.write({"token": str(self.rotation)})
        assert self.volume.committed_at is not None
        if measured:
            self.commits[self.rotation] = self.volume.committed_at
        return self.volume.committed_at

    def reactions(self) -> list[Reaction]:
        """Its requests, each with the rotation it stands for (see :func:`reactions`)."""
        return reactions(self.commits, self.receiver.arrivals)


def reactions(commits: dict[int, int], arrivals: list[int]) -> list[Reaction]:
    """Each request that arrived after the first of ``commits`` (rotation -> commit time, in
    the order written), with the latest rotation committed before it arrived: what a reload
    it asked for would read. Requests before it (the warm-up's) are left out."""
    times = list(commits.values())
    numbers = list(commits)
    return [
        (arrived, numbers[bisect.bisect_right(times, arrived) - 1])
        for arrived in arrivals
        if arrived >= times[0]
    ]


def secretwatch_command(volume: Path, listen: str, url: str) -> list[str]:
    """``secretwatch watch`` with a webhook and ``--listen``, and its defaults otherwise
    (logging included: JSON lines at info, one per change and one per webhook)."""
    return [
        sys.executable,
        "-m",
        "secretwatch",
        "watch",
        str(volume),
        "--webhook",
        url,
        "--listen",
        listen,
    ]


def floor_command(volume: Path, url: str) -> list[str]:
    """The floor script, run as a file: ``-m benchmarks`` would import more than it needs."""
    return [sys.executable, str(_FLOOR_SCRIPT), str(volume), url]


def start(command: list[str], listen: str | None, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``command``, logging to ``log``; return it once ready: ``/readyz`` answers 200
    on ``listen``, or (``listen`` is ``None``) it printed a line."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    try:
        if listen is not None:
            wait_ready(listen, process)
        else:
            assert process.stdout is not None
            if not process.stdout.readline():
                raise RuntimeError(f"{command[1]} exited with {process.wait(30)}")
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a subject: its stdin closed, then SIGTERM."""
    assert process.stdin is not None
    process.stdin.close()
    process.terminate()
    process.wait(30)


def warm_up(subject: Subject) -> None:
    """Rotate until the subject posts for a rotation: then it is watching, and its first
    request (lazy imports, first connection) is behind it."""
    for _ in range(10):
        if subject.receiver.wait_after(subject.rotate(measured=False), timeout=3):
            return
    raise RuntimeError(f"{subject.name} did not post for 10 warm-up rotations")


def rotate_all(subjects: list[Subject], rounds: int) -> None:
    """``rounds`` rounds: each subject's volume rotated once per round, in a random order,
    at random intervals; then wait for each subject's request for its last rotation."""
    pace = threading.Event()  # never set: a paced wait
    for _ in range(rounds):
        for subject in random.sample(subjects, len(subjects)):
            pace.wait(random.uniform(0.05, 0.15))  # noqa: S311 - not crypto
            subject.rotate(measured=True)
    for subject in subjects:
        if not subject.receiver.wait_after(subject.commits[subject.rotation], timeout=10):
            raise RuntimeError(f"{subject.name} did not post for its last rotation")


def latency(scratch: Path, rounds: int, log: IO[bytes]) -> dict[str, dict[str, Any]]:
    """Each subject's latency percentiles and RSS, by name."""
    with ExitStack() as stack:
        subjects: list[Subject] = []
        for name in (SECRETWATCH, FLOOR):
            volume = AtomicVolume(scratch / f"secret-{len(subjects)}")
            volume.write({"token": "0"})
            receiver = Receiver()
            stack.callback(receiver.close)
            subjects.append(Subject(name, volume, receiver))
        for subject in subjects:
            url = subject.receiver.url
            if subject.name == SECRETWATCH:
                listen = f"127.0.0.1:{free_port()}"
                process = start(secretwatch_command(subject.volume.path, listen, url), listen, log)
            else:
                process = start(floor_command(subject.volume.path, url), None, log)
            stack.callback(stop, process)
            subject.pid = process.pid
            warm_up(subject)
        warm = {subject.name: sample(subject.pid).rss_kib for subject in subjects}
        rotate_all(subjects, rounds)
        return {
            subject.name: {
                "unit": "ms",
                "rotations": len(subject.commits),
                **percentiles(latencies(subject.commits, subject.reactions())),
                "rss_warm_mib": warm[subject.name] / 1024,
                "rss_end_mib": sample(subject.pid).rss_kib / 1024,
            }
            for subject in subjects
        }


def starts(scratch: Path, count: int, log: IO[bytes]) -> dict[str, list[float]]:
    """Milliseconds from start to ready of each subject and of a bare interpreter, each
    started ``count`` times, in turn."""
    volume = AtomicVolume(scratch / "quiet")
    volume.write({"token": "0"})
    url = f"http://127.0.0.1:{free_port()}/-/reload"  # never called: nothing rotates
    bare = [sys.executable, "-c", "print('ready', flush=True); import sys; sys.stdin.read()"]
    times: dict[str, list[float]] = {SECRETWATCH: [], FLOOR: [], BARE: []}
    for _ in range(count):
        listen = f"127.0.0.1:{free_port()}"
        for name, command, address in (
            (SECRETWATCH, secretwatch_command(volume.path, listen, url), listen),
            (FLOOR, floor_command(volume.path, url), None),
            (BARE, bare, None),
        ):
            began = time.perf_counter()
            process = start(command, address, log)
            times[name].append((time.perf_counter() - began) * 1000)
            stop(process)
    return times


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the sidecar table."""
    compile_secretwatch()
    rows: dict[str, dict[str, Any]] = {
        name: {"benchmark": "sidecar", "what": name} for name in (SECRETWATCH, FLOOR, BARE)
    }
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch:
        directory = Path(scratch)
        with open(directory / "subjects.log", "wb") as log:  # secretwatch logs at info
            for name, figures in latency(directory, 3 if smoke else 200, log).items():
                rows[name].update(figures)
            for name, times in starts(directory, 2 if smoke else 10, log).items():
                rows[name].update(
                    starts=len(times),
                    ready_ms=statistics.median(times),
                    ready_min_ms=min(times),
                    ready_max_ms=max(times),
                )
    return list(rows.values())
