"""The benchmarks keep working: a smoke run with tiny sizes (the figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    benchmarks = {row["benchmark"] for row in written["results"]}
    assert benchmarks == {"latency", "read cost", "reload cost"}
    assert all(row.get("seconds", row.get("p50", 0)) > 0 for row in written["results"])
    assert "x dict" in done.stdout
