"""The sidecar as a container's init (PID 1 of a real PID namespace): it reaps the orphans
it is handed, never a process someone else waits for, and survives bursts of them.

Each scenario runs many times in a loop, since the defects it guards against were races
that showed in some runs only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from secretwatch.testing import AtomicVolume

from .sidecar import Sidecar

CANARY = "CANARY-pid1-51c7"
NAMESPACE = ("unshare", "--fork", "--pid", "--mount-proc", "--kill-child")


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    probe = subprocess.run([*NAMESPACE, "true"], capture_output=True, check=False)
    if probe.returncode:
        pytest.skip("no PID namespace here (unshare needs privileges)")


@pytest.fixture
def vol(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY + "-0"})
    return volume


class Init(Sidecar):
    """``python -m secretwatch ARGS`` as PID 1 of a new PID namespace."""

    def __init__(self, *args: str):
        super().__init__(*args, env={"SECRETWATCH_LOG_LEVEL": "debug"}, prefix=NAMESPACE)
        self._reaped = 0  # orphans expected to be reaped so far

    @property
    def init_pid(self) -> int:
        """secretwatch's pid, as this test's namespace sees it (unshare's only child)."""
        pid = self.process.pid
        (init,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(init)

    def reaped(self, count: int) -> None:
        """Wait until ``count`` more orphans were reported reaped (and no more)."""
        self._reaped += count
        assert self.total("secretwatch.reaped", "processes", self._reaped) == self._reaped

    def zombies(self) -> list[int]:
        """The zombie children of secretwatch (pids in this test's namespace)."""
        init = self.init_pid
        children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
        found = []
        for pid in children:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            except FileNotFoundError:  # reaped meanwhile
                continue
            if state == "Z":
                found.append(int(pid))
        return found


# A command whose orphans end together: a child forks them and exits, so that they are
# handed to PID 1, blocked on a pipe that the command then closes.
BURST = """
import json, os, signal, sys
count = int(sys.argv[1])
read_end, write_end = os.pipe()
middle = os.fork()
if middle == 0:
    for _ in range(count):
        if os.fork() == 0:
            os.close(write_end)
            os.read(read_end, 1)  # until the command closes the pipe
            os._exit(0)
    os._exit(0)
os.waitpid(middle, 0)  # the orphans are init's now
os.close(write_end)  # ... and they all end together
print(json.dumps({"says": "started"}), flush=True)
signal.pause()
"""


@pytest.mark.parametrize("orphans", [8, 40])
def test_a_burst_of_orphans_is_reaped(vol: AtomicVolume, orphans: int) -> None:
    """Orphans that end together are all reaped, and SIGTERM then ends run at once, in
    every one of several runs (a reaper inside the SIGCHLD handler ran again while it ran:
    it crashed importing a codec, or hung on the log's lock)."""
    for _ in range(6):
        with Init(*("run", str(vol.path), "--", sys.executable, "-c", BURST, str(orphans))) as init:
            assert init.said()["says"] == "started"
            init.reaped(orphans)
            assert init.zombies() == []
            os.kill(init.init_pid, signal.SIGTERM)
            assert init.wait() == 128 + signal.SIGTERM  # the command, ended by it


def orphans_then_sleep(count: int) -> tuple[str, ...]:
    """A command that leaves ``count`` orphans (in its process group) and keeps running."""
    script = (
        f"(i=0; while [ $i -lt {count} ]; do sleep 1000 & i=$((i+1)); done); "
        'echo \'{"says": "started"}\'; exec sleep 1001'
    )
    return ("sh", "-c", script)


def test_a_restart_reaps_the_orphans_of_the_command(vol: AtomicVolume) -> None:
    """Each restart ends the command and its 40 orphans together, 10 times: every orphan
    is reaped, none is left a zombie, and SIGTERM still ends run at once."""
    orphans = 40
    with Init(
        *("run", str(vol.path), "--debounce", "0", "--"),
        *orphans_then_sleep(orphans),
    ) as init:
        assert init.said()["says"] == "started"
        for rotation in range(1, 11):
            vol.write({"token": f"{CANARY}-{rotation}"})
            assert init.said()["says"] == "started"  # the restarted command
            init.reaped(orphans)  # those of the command that was restarted
        assert init.zombies() == []
        os.kill(init.init_pid, signal.SIGTERM)
        assert init.wait() == 128 + signal.SIGTERM  # the command's sleep, ended by it
    assert CANARY not in init.output()


def test_the_exit_code_of_an_exec_command_is_its_own(vol: AtomicVolume) -> None:
    """An --exec command runs in a session of its own; as PID 1 its exit code 3 is still
    reported (the reaper took it, and Popen then saw 0: 'action_done')."""
    with Init(
        *("run", str(vol.path), "--debounce", "0", "--on-change", "signal:HUP"),
        *("--exec", "sh -c 'exit 3'", "--webhook-retries", "0"),
        *("--", "sh", "-c", "trap '' HUP; echo '{\"says\": \"started\"}'; exec sleep 1000"),
    ) as init:
        assert init.said()["says"] == "started"
        for rotation in range(1, 11):
            vol.write({"token": f"{CANARY}-{rotation}"})
            failed = init.event("secretwatch.action_failed", action="exec")
            assert failed["error"] == "exec sh: exit code 3"
            init.event("secretwatch.action_gave_up", action="exec")
        done = [e for e in init.history if e["event"] == "secretwatch.action_done"]
        assert [e["action"] for e in done] == ["signal"] * 10, init.output()
        os.kill(init.init_pid, signal.SIGTERM)
        init.wait()


def test_the_exit_code_of_the_command_is_its_own(vol: AtomicVolume) -> None:
    """A command that fails at once is seen failing (it exited 0 to a reaper that took it
    before it was registered, and run ended with 0)."""
    for _ in range(8):
        with Init("run", str(vol.path), "--", "sh", "-c", "exit 3") as init:
            assert init.event("secretwatch.child_exited")["exit_code"] == 3
            init.event("secretwatch.child_restarting")
            os.kill(init.init_pid, signal.SIGTERM)
            assert init.wait() == 128 + signal.SIGTERM  # waiting to start it again


def test_watch_as_pid_1_reaps_what_its_commands_leave(vol: AtomicVolume) -> None:
    """secretwatch watch as a sidecar container's entrypoint reaps the orphans its --exec
    commands leave, and still reports their own exit codes."""
    # it exits 3, leaving a child that ends once it has (reading the end of a pipe)
    script = (
        "import os; r, w = os.pipe(); child = os.fork() == 0; "
        "child and os.close(w); os.read(r, 1) if child else os._exit(3)"
    )
    command = f'{sys.executable} -c "{script}"'
    with Init(
        *("watch", str(vol.path), "--debounce", "0", "--webhook-retries", "0"),
        *("--exec", command),
    ) as init:
        init.event("secretwatch.watching")
        for rotation in range(1, 6):
            vol.write({"token": f"{CANARY}-{rotation}"})
            failed = init.event("secretwatch.action_failed", action="exec")
            assert failed["error"].endswith("exit code 3")
        init.reaped(5)
        assert init.zombies() == []
        os.kill(init.init_pid, signal.SIGTERM)
        assert init.wait() == 0
