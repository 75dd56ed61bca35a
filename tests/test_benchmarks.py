"""The benchmarks keep working: a smoke run with tiny sizes (the figures are not checked),
and the latency attribution that the figures rest on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import footprint, reload_cost
from benchmarks.__main__ import BENCHMARKS
from benchmarks.latency import latencies
from benchmarks.sidecar import reactions

ROOT = Path(__file__).parent.parent


def test_the_benchmarks_run(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    command = [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(results)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(results.read_text())
    assert written["machine"]["smoke"] is True
    rows = written["results"]
    benchmarks = {row["benchmark"] for row in rows}
    assert benchmarks == {
        "latency",
        "read cost",
        "reload cost",
        "idle cost",
        "footprint",
        "sidecar",
    }
    assert all("error" not in row for row in rows), [row for row in rows if "error" in row]
    for row in rows:
        keys = ("p50", "seconds", "cpu_seconds", "threads", "ready_ms", "import_ms")
        figures = [row.get(key) for key in keys]
        # a number, not a check of it: at smoke sizes a time net of timeit's own loop can
        # come out below zero on a busy machine
        assert any(isinstance(figure, int | float) for figure in figures), row
    headers = (
        "p99",
        "x a dict lookup",
        "x bare read",
        "share of one core",
        "threads",
        "start to ready",
        "import time",
        "import RSS",
    )
    for header in headers:
        assert header in done.stdout
    imported = {row["what"]: row for row in rows if "import_ms" in row}
    assert set(imported) == set(footprint.IMPORTS)  # secretwatch, watchdog and watchfiles
    for row in imported.values():
        assert row["import_ms"] > 0
        assert row["rss_mib"] > row["import_rss_mib"] > 0
    titles = {"read": "read cost", "reload": "reload cost", "idle": "idle cost"}
    for name, module in BENCHMARKS.items():  # the targets can be judged on these rows
        rows_of = [row for row in rows if row["benchmark"] == titles.get(name, name)]
        for target, measured, met in module.targets(rows_of):
            assert target
            assert measured
            assert isinstance(met, bool)


def test_a_late_or_skipping_observer_is_measured_from_each_commit() -> None:
    """An observer's latency for a rotation ends at its first reaction holding that rotation
    or a newer one: a poller that saw only the later of two rotations was late for both."""
    commits = {2: 1_000_000, 3: 5_000_000}  # nanoseconds
    prompt = [(2_000_000, 2), (6_000_000, 3)]
    assert latencies(commits, prompt) == [1.0, 1.0]
    skipping = [(9_000_000, 3)]
    assert latencies(commits, skipping) == [8.0, 4.0]


def test_a_webhook_request_stands_for_the_rotation_in_place_when_it_arrived() -> None:
    """The sidecar benchmark credits each request to the latest rotation committed before it
    arrived, and leaves out requests from before the first measured rotation (warm-up)."""
    commits = {4: 1_000_000, 5: 5_000_000}  # nanoseconds
    arrivals = [500_000, 1_500_000, 4_999_999, 5_000_000]
    assert reactions(commits, arrivals) == [(1_500_000, 4), (4_999_999, 4), (5_000_000, 5)]


def test_the_reload_target_is_judged_at_1000_keys() -> None:
    """The smoke run has no 1,000-key row, so the reload target is checked here."""
    assert reload_cost.targets([{"what": "10 keys", "x_bare": 9.0}]) == []
    ((target, measured, met),) = reload_cost.targets([{"what": "1,000 keys", "x_bare": 1.2}])
    assert (measured, met) == ("1.20x", True)
    assert "1.5x" in target
    ((_, _, met),) = reload_cost.targets([{"what": "1,000 keys", "x_bare": 1.6}])
    assert met is False
