"""Idle cost: CPU time used over 30 s with no change, each watcher in its own process.

Subjects, all watching one 100-key volume at once: a secretwatch watcher with inotify, one
polling every second, and the ``secretwatch watch`` sidecar; beside them, watchfiles'
``watch()`` and a naive loop reading every file every second. Targets: inotify under 0.1%
of one core; polling at 1 s under 1% for 100 keys. CPU time comes from ``/proc`` in clock
ticks (10 ms), so a figure under 0.03% is "too little to measure" in 30 s.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from secretwatch.testing import AtomicVolume

from ._process import cpu_seconds, free_port, sidecar_command, subject, wait_ready
from ._targets import Target, row

COLUMNS = [
    ("CPU in the window", lambda row: f"{row['cpu_seconds'] * 1000:.0f} ms"),
    ("share of one core", lambda row: f"{row['core_percent']:.3f}%"),
]


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """inotify under 0.1% of one core; polling every second under 1% (for 100 keys)."""
    found: list[Target] = []
    for name, ceiling in (("secretwatch (inotify)", 0.1), ("secretwatch (polling, 1 s)", 1.0)):
        measured = row(rows, f"{name}, *")
        share = measured["core_percent"]
        target = f"{measured['what']}: under {ceiling}% of a core"
        found.append((target, f"{share:.3f}%", share < ceiling))
    return found


SUBJECTS = {
    "secretwatch (inotify)": "secretwatch",
    "secretwatch (polling, 1 s)": "secretwatch-polling",
    "watchfiles watch()": "watchfiles",
    "naive loop reading every file every 1 s": "naive",
}


def run(*, smoke: bool) -> list[dict[str, Any]]:
    """The rows of the idle-cost table."""
    window = 1.0 if smoke else 30.0
    keys = 10 if smoke else 100
    with tempfile.TemporaryDirectory(prefix="secretwatch-bench-") as scratch, ExitStack() as stack:
        volume = AtomicVolume(Path(scratch) / "secret")
        volume.write({f"key-{i:03d}": f"value-{i}" for i in range(keys)})
        pids = {
            name: stack.enter_context(subject(kind, [volume.path])).pid
            for name, kind in SUBJECTS.items()
        }
        listen = f"127.0.0.1:{free_port()}"
        sidecar = subprocess.Popen(sidecar_command([volume.path], listen, "--exec", "true"))
        stack.callback(sidecar.wait, 30)
        stack.callback(sidecar.terminate)
        wait_ready(listen, sidecar)
        pids["secretwatch watch (the sidecar)"] = sidecar.pid
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        threading.Event().wait(window)  # the window: nothing happens
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        elapsed = time.monotonic() - started
    return [
        {
            "benchmark": "idle cost",
            "what": f"{name}, {keys} keys",
            "window_seconds": round(elapsed, 1),
            "cpu_seconds": cpu,
            "core_percent": 100 * cpu / elapsed,
        }
        for name, cpu in used.items()
    ]
