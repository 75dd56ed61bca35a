"""What a command loads at start: the sidecar's start-to-ready time is mostly imports, so a
command imports what it runs, not what another command needs (see benchmarks/sidecar.py)."""

from __future__ import annotations

import subprocess
import sys


def imported(*args: str) -> set[str]:
    """The modules ``python -m secretwatch ARGS`` imports, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secretwatch", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_the_test_kit_is_loaded_by_the_demo_alone() -> None:
    """``watch`` (and every command but ``demo``) never loads ``secretwatch.testing``, the
    test kit with its fake AI Core server, which only the demo runs."""
    assert "secretwatch.testing" not in imported("watch", "--help")
    assert "secretwatch.testing" not in imported("show", "--help")
