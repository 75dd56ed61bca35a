"""``secretwatch run -- CMD``: the command is restarted or signalled on change, and stopped."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT
from .sidecar import Sidecar

CANARY = "CANARY-run-3b9e"

CHILD = """
import json, os, signal, sys
def say(what):
    print(json.dumps({"pid": os.getpid(), "says": what, "argv": sys.argv[1:]}), flush=True)
signal.signal(signal.SIGHUP, lambda *_: say("HUP"))
signal.signal(signal.SIGTERM, lambda *_: (say("TERM"), sys.exit(7)))
say("started")
if "--exit-with" in sys.argv:
    sys.exit(int(sys.argv[sys.argv.index("--exit-with") + 1]))
while True:
    signal.pause()
"""


@pytest.fixture
def vol(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY + "-1"})
    return volume


class Run(Sidecar):
    def said(self, timeout: float = TIMEOUT) -> dict[str, object]:
        """The next line the child printed."""
        try:
            line = self.stdout.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the command said nothing within {timeout} s: {self.output()}")
        if line is None:
            pytest.fail(f"the command's output ended: {self.output()}")
        return dict(json.loads(line))


@contextlib.contextmanager
def running(vol: AtomicVolume, *options: str, child_args: tuple[str, ...] = ()) -> Iterator[Run]:
    process = Run(
        "run",
        str(vol.path),
        "--debounce",
        "0",
        *options,
        "--",
        sys.executable,
        "-c",
        CHILD,
        *child_args,
    )
    try:
        yield process
    finally:
        process.close()


def test_restart_on_change_and_sigterm_is_passed_on(vol: AtomicVolume) -> None:
    with running(vol, child_args=("--verbose", "x")) as run:
        first = run.said()
        assert first["says"] == "started"
        assert first["argv"] == ["--verbose", "x"]  # never secretwatch's own arguments
        vol.write({"token": CANARY + "-2"})
        assert run.said() == {**first, "says": "TERM"}  # graceful: SIGTERM first
        second = run.said()
        assert second["says"] == "started"
        assert second["pid"] != first["pid"]
        run.event("secretwatch.action_done", action="restart", version=2)
        code = run.stop(signal.SIGTERM)
        assert run.said() == {**second, "says": "TERM"}
        assert code == 7  # the command's exit code
    assert CANARY not in run.output()


def test_signal_on_change(vol: AtomicVolume) -> None:
    with running(vol, "--on-change", "signal:HUP") as run:
        first = run.said()
        vol.write({"token": CANARY + "-2"})
        assert run.said() == {**first, "says": "HUP"}
        vol.write({"token": CANARY + "-3"})
        assert run.said() == {**first, "says": "HUP"}  # the same process, signalled again
        assert run.stop(signal.SIGINT) == 128 + signal.SIGINT  # no handler: killed by it


def test_a_command_that_ends_well_ends_run(vol: AtomicVolume) -> None:
    with running(vol, child_args=("--exit-with", "0")) as run:
        assert run.said()["says"] == "started"
        assert run.wait() == 0


def test_a_command_that_fails_is_restarted_with_backoff(vol: AtomicVolume) -> None:
    with running(vol, child_args=("--exit-with", "3")) as run:
        first = run.said()
        exited = run.event("secretwatch.child_exited", pid=first["pid"])
        assert exited["exit_code"] == 3
        restarting = run.event("secretwatch.child_restarting")
        assert (restarting["delay"], restarting["failures"]) == (1.0, 1)
        second = run.said()
        assert second["says"] == "started"
        assert second["pid"] != first["pid"]
        assert run.event("secretwatch.child_restarting")["delay"] == 2.0  # backing off
        assert run.stop(signal.SIGTERM) in (3, 7)  # caught between attempts, or running


def test_run_needs_a_command(vol: AtomicVolume) -> None:
    process = Sidecar("run", str(vol.path))
    try:
        assert process.wait() == 1
        assert "give the command after --" in process.output()
    finally:
        process.close()
