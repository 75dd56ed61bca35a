"""Footprint: threads and open descriptors with 1, 10 and 100 watchers in one process; the
sidecar's memory and its time from start to ready; what importing each library costs.

Each case is a fresh process (``_subject``) watching that many volumes, all running at once;
threads are counted once started and again after 32 s idle. Peers: watchdog
(one ``Observer`` with a schedule per volume) and watchfiles (one ``watch()`` of every
volume, on a thread of its own, as it blocks). Target: secretwatch's threads constant. The
sidecar's peer is a bare Python interpreter, the floor of any Python sidecar.

An import is timed, and its memory taken, in a fresh interpreter of its own, several times
over (the median of each): the time from just before the import statement to just after,
and the resident memory (``VmRSS`` of ``/proc/self/status``) it added to that interpreter's.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from secretwatch._watch.runtime import WORKER_IDLE_TIMEOUT
from secretwatch.testing import AtomicVolume

from ._process import (
    Sample,
    compile_secretwatch,
    free_port,
    sample,
    sidecar_command,
    subject,
    wait_ready,
)
from ._targets import Target

COLUMNS = [
    ("threads at start", lambda row: _figure(row, "threads")),
    ("threads idle", lambda row: _figure(row, "threads_idle")),
    ("open fds", lambda row: _figure(row, "fds")),
    ("RSS", lambda row: _figure(row, "rss_mib", "{:.1f} MiB")),
    ("start to ready", lambda row: _figure(row, "ready_ms", "{:.0f} ms")),
    ("import time", lambda row: _figure(row, "import_ms", "{:.0f} ms")),
    ("import RSS", lambda row: _figure(row, "import_rss_mib", "+{:.1f} MiB")),
]

KINDS = {"secretwatch": "secretwatch", "watchdog Observer": "watchdog", "watchfiles": "watchfiles"}

IMPORTS = {  # what a user imports to watch with each
    "import secretwatch": "import secretwatch",
    "import secretwatch, then watch_settings": "import secretwatch; secretwatch.watch_settings",
    "import watchdog (Observer, handler)": (
        "from watchdog.events import FileSystemEventHandler; "
        "from watchdog.observers import Observer"
    ),
    "import watchfiles": "import watchfiles",
}

# run by a fresh interpreter: the import's time and the memory it added, as "ms kib kib"
_IMPORT_PROBE = """
import sys, time
def rss_kib():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
code = compile(sys.argv[1], "<import>", "exec")
before = rss_kib()
started = time.perf_counter()
exec(code)
elapsed = time.perf_counter() - started
after = rss_kib()
print(elapsed * 1000, after - before, after)
"""


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """Whether secretwatch's threads stay constant as the volumes grow, once idle."""
    threads = [row["threads_idle"] for row in rows if row["what"].startswith("secretwatch, ")]
    shown = " / ".join(map(str, threads))
    return [
        ("secretwatch's idle threads constant with more volumes", shown, len(set(threads)) == 1)
    ]


def _figure(row: dict[str, Any], key: str, form: str = "{}") -> str:
    if "error" in row:
        return row["error"] if key == "threads" else ""
    return "" if row.get(key) is None else form.format(row[key])


def settled(pid: int) -> Sample:
    """A sample once the thread count held still for 0.3 s (threads some libraries start
    lazily, after their first call returned), at most 5 s."""
    deadline = time.monotonic() + 5
    pace = threading.Event()  # never set: a paced wait
    last = sample(pid)
    while time.monotonic() < deadline:
        pace.wait(0.3)
        now = sample(pid)
        if now.threads == last.threads:
            return now
        last = now
    return last


def watchers(volumes: list[Path], counts: tuple[int, ...], idle: float) -> list[dict[str, Any]]:
    """Every case at once, each in its process: threads once started, then after ``idle``
    seconds (secretwatch's worker pools let their threads go after 30 s without work)."""
    rows: dict[str, dict[str, Any]] = {}
    running = []
    with ExitStack() as stack:
        for name, kind in KINDS.items():
            for count in counts:
                what = f"{name}, {count} volume{'s' if count > 1 else ''}"
                rows[what] = {"benchmark": "footprint", "what": what}
                try:
                    process = stack.enter_context(subject(kind, volumes[:count]))
                except RuntimeError as exc:  # an inotify limit, say
                    rows[what]["error"] = f"failed to start ({exc})"[:60]
                    continue
                rows[what]["threads"] = settled(process.pid).threads
                running.append((what, process.pid))
        threading.Event().wait(idle)  # nothing happens meanwhile
        for what, pid in running:
            held = sample(pid)
            rows[what].update(threads_idle=held.threads, fds=held.fds, rss_mib=held.rss_kib / 1024)
    return list(rows.values())


def imports(runs: int) -> list[dict[str, Any]]:
    """Each of :data:`IMPORTS` ``runs`` times, each time in a fresh interpreter, taking
    turns: the median import time, memory added, and resident memory after."""
    figures: dict[str, list[tuple[float, ...]]] = {what: [] for what in IMPORTS}
    for _ in range(runs):
        for what, statement in IMPORTS.items():
            command = [sys.executable, "-c", _IMPORT_PROBE, statement]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            figures[what].append(tuple(map(float, done.stdout.split())))
    rows = []
    for what, runs_of in figures.items():
        ms, added, after = (statistics.median(column) for column in zip(*runs_of, strict=True))
        rows.append(
            {
                "benchmark": "footprint",
                "what": what,
                "import_ms": ms,
                "import_rss_mib": added / 1024,
                "rss_mib": after / 1024,
                "runs": runs,
            }
        )
    return rows


def ready(command: list[str], listen: str | None) -> dict[str, Any]:
    """Start ``command``; the time until it is ready (/readyz on ``listen``, or a line on
    stdout) and what it holds then."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if listen is None:
            assert process.stdout is not None
            process.stdout.readline()
        else:
            wait_ready(listen, process)
        elapsed = time.monotonic() - started
        held = sample(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    return {
        "threads": held.threads,
        "fds": held.fds,
        "rss_mib": held.rss_kib / 1024,
        "ready_ms": elapsed * 1000,
    }


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the footprint table."""
    counts = (1, 2) if smoke else (1, 10, 100)
    compile_secretwatch()
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch:
        volumes = []
        for n in range(max(counts)):
            volume = AtomicVolume(Path(scratch) / f"secret-{n}")
            volume.write({"username": "app", "password": f"pw-{n}"})
            volumes.append(volume.path)
        rows = watchers(volumes, counts, idle=0.0 if smoke else WORKER_IDLE_TIMEOUT + 2)
        listen = f"127.0.0.1:{free_port()}"
        sidecar = sidecar_command(volumes[:1], listen, "--exec", "true")
        floor = [sys.executable, "-c", "print('ready', flush=True); import sys; sys.stdin.read()"]
        for what, command, address in (
            ("secretwatch watch (the sidecar), 1 volume", sidecar, listen),
            ("python -c (a bare interpreter: the floor)", floor, None),
        ):
            rows.append({"benchmark": "footprint", "what": what, **ready(command, address)})
    rows += imports(runs=2 if smoke else 11)
    return rows
