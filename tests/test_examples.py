"""The examples in examples/ run as real processes against a real volume."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_print_changes(tmp_path: Path) -> None:
    """print_changes.py reports the load, a rotation and a rejection, then exits on SIGTERM."""
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": "CANARY-1"})
    command = [sys.executable, str(EXAMPLES / "print_changes.py"), str(volume.path)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "version 1: keys ['token']\n"
            volume.write({"token": "CANARY-2", "extra": "CANARY-3"})
            line = process.stdout.readline()
            assert line == "version 2: added ['extra'], removed [], modified ['token']\n"
            volume.write({"token": b"\xff CANARY-4"})  # not UTF-8: rejected
            line = process.stdout.readline()
            assert line.startswith("rejected: key 'token'")
            assert "CANARY" not in line
            process.send_signal(signal.SIGTERM)
            assert process.wait(TIMEOUT) == 0
        finally:
            if process.poll() is None:  # a failed assertion: don't wait for it forever
                process.kill()
