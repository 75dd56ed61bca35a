"""Soak: a watcher with a callback, and the sidecar, under steady rotation; is anything growing?

    python -m benchmarks.soak                    # 10 minutes, 1 rotation per second
    python -m benchmarks.soak --minutes 1 --rate 5 --every 5

A kubelet-style volume is rotated ``--rate`` times per second. In this process a watcher
applies each rotation and a callback counts it; a ``secretwatch watch`` sidecar (a
subprocess, with ``--listen``) watches the same volume and posts each change to a webhook
served here. Every ``--every`` seconds, open file descriptors, threads and RSS of both
processes are sampled. After a warm-up (the first fifth of the run), they must stay flat:
descriptors and threads within +2 of their warm-up maximum, RSS within 5% or 4 MiB of its
value after the warm-up. Prints the series and a verdict; exits 1 on a failure.
Needs the ``sidecar`` extra. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import structlog

import secretwatch
from secretwatch.testing import AtomicVolume

from ._process import Sample, free_port, sample, sidecar_command, wait_ready

KEYS = ("username", "password", "tls.crt", "tls.key", "nested/token")


class Webhook:
    """Counts the sidecar's POSTs."""

    def __init__(self) -> None:
        self.calls = 0
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                webhook.calls += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/-/reload"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def verdict(name: str, series: list[Sample]) -> list[str]:
    """What grew after the warm-up, as failure messages (none: flat)."""
    warm = max(1, len(series) // 5)
    settled, later = series[:warm], series[warm:]
    if not later:
        return [f"{name}: too few samples for a verdict (run longer)"]
    failures = []
    for field, allowance in (("fds", 2), ("threads", 2)):
        ceiling = max(getattr(s, field) for s in settled) + allowance
        peak = max(getattr(s, field) for s in later)
        if peak > ceiling:
            failures.append(f"{name}: {field} rose to {peak} (warm-up ceiling {ceiling})")
    base = settled[-1].rss_kib
    rss_allowance = max(base * 0.05, 4096)
    if later[-1].rss_kib - base > rss_allowance:
        grown = (later[-1].rss_kib - base) / 1024
        failures.append(f"{name}: RSS grew {grown:.1f} MiB after the warm-up")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--rate", type=float, default=1.0, help="rotations per second")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory(prefix="secretwatch-soak-") as scratch:
        volume = AtomicVolume(Path(scratch) / "secret")
        volume.write({key: f"{key}@0" for key in KEYS})
        applied = threading.Semaphore(0)
        callbacks = [0]

        def on_change(change: secretwatch.Change) -> None:
            callbacks[0] += 1
            applied.release()

        webhook = Webhook()
        listen = f"127.0.0.1:{free_port()}"
        sidecar = subprocess.Popen(sidecar_command([volume.path], listen, "--webhook", webhook.url))
        try:
            wait_ready(listen, sidecar)
            with secretwatch.watch(volume.path) as watcher:
                watcher.subscribe(on_change)
                series = soak(args, volume, applied, sidecar.pid)
                rotations = watcher.snapshot.version - 1
        finally:
            sidecar.send_signal(signal.SIGTERM)
            sidecar.wait(30)
            webhook.server.shutdown()

    columns = f"{'fds':>4} {'thr':>4} {'RSS MiB':>8}"
    print(f"{'s':>6} | {columns} | sidecar {columns}")
    for mine, theirs in series:
        print(
            f"{mine.seconds:6.0f} | {mine.fds:4d} {mine.threads:4d} {mine.rss_kib / 1024:8.1f} |"
            f"         {theirs.fds:4d} {theirs.threads:4d} {theirs.rss_kib / 1024:8.1f}"
        )
    print(f"rotations applied: {rotations}, callbacks: {callbacks[0]}, webhooks: {webhook.calls}")
    failures = verdict("watcher", [m for m, _ in series]) + verdict(
        "sidecar", [t for _, t in series]
    )
    if callbacks[0] < rotations or webhook.calls < rotations:
        failures.append("a rotation was not delivered to the callback or the webhook")
    print("PASS: flat" if not failures else "FAIL:\n  " + "\n  ".join(failures))
    return 1 if failures else 0


def soak(
    args: argparse.Namespace, volume: AtomicVolume, applied: threading.Semaphore, sidecar: int
) -> list[tuple[Sample, Sample]]:
    """Rotate at the requested rate; sample both processes every ``args.every`` seconds."""
    start = time.monotonic()
    end = start + args.minutes * 60
    next_sample = start
    series: list[tuple[Sample, Sample]] = []
    rotation = 0
    pace = threading.Event()  # never set: a paced wait
    while (now := time.monotonic()) < end:
        if now >= next_sample:
            series.append((sample(os.getpid(), start), sample(sidecar, start)))
            next_sample += args.every
        rotation += 1
        volume.write({key: f"{key}@{rotation}" for key in KEYS})
        if not applied.acquire(timeout=30):
            raise SystemExit(f"rotation {rotation} was not applied within 30 s")
        pace.wait(max(0.0, start + rotation / args.rate - time.monotonic()))
    series.append((sample(os.getpid(), start), sample(sidecar, start)))
    return series


if __name__ == "__main__":
    sys.exit(main())
