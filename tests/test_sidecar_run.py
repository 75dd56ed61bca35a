"""``secretwatch run -- CMD``: the command is restarted or signalled on change, and stopped."""

from __future__ import annotations

import os
import select
import signal
import sys
from pathlib import Path

import pytest
from structlog.testing import LogCapture

from secretwatch._cli.sidecar.child import Child
from secretwatch._cli.sidecar.run import _pass_on
from secretwatch._cli.sidecar.signals import StopRequest
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, events
from .sidecar import Sidecar

CANARY = "CANARY-run-3b9e"

CHILD = """
import json, os, signal, subprocess, sys
def say(what, **more):
    line = {"pid": os.getpid(), "says": what, "argv": sys.argv[1:], **more}
    print(json.dumps(line), flush=True)
def option(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None
signal.signal(signal.SIGHUP, lambda *_: say("HUP"))
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif "--linger" in sys.argv:  # says it got SIGTERM, and goes on
    signal.signal(signal.SIGTERM, lambda *_: say("TERM"))
else:
    signal.signal(signal.SIGTERM, lambda *_: (say("TERM"), sys.exit(7)))
if option("--exit-once-with") and not os.path.exists(option("--marker")):
    open(option("--marker"), "w").close()
    sys.exit(int(option("--exit-once-with")))
if "--with-grandchild" in sys.argv or "--with-stubborn-grandchild" in sys.argv:
    stubborn = "--with-stubborn-grandchild" in sys.argv  # it ignores SIGTERM
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN); " if stubborn else ""
    script = f"import signal; {ignore}print(flush=True); signal.pause()"
    grandchild = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    grandchild.stdout.readline()  # its signals are set
    say("started", grandchild=grandchild.pid)
else:
    say("started")
if option("--exit-with"):
    sys.exit(int(option("--exit-with")))
while True:
    signal.pause()
"""


@pytest.fixture
def vol(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY + "-1"})
    return volume


class Run(Sidecar):
    """``secretwatch run`` whose command is :data:`CHILD`, which says what it gets."""


def running(vol: AtomicVolume, *options: str, child_args: tuple[str, ...] = ()) -> Run:
    return Run(
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
        run.event("secretwatch.action_done", action="restart", volume_version=2)
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


def test_hup_is_passed_on_to_the_command(vol: AtomicVolume) -> None:
    """SIGHUP to run reaches the command, as sent to an init process, and does not stop run."""
    with running(vol) as run:
        first = run.said()
        for _ in range(3):
            run.process.send_signal(signal.SIGHUP)
            assert run.said() == {**first, "says": "HUP"}
        assert run.stop(signal.SIGTERM) == 7


def test_a_signal_with_no_command_to_take_it_is_reported(logs: LogCapture) -> None:
    """With no command running (not started, or waiting to start it again), a signal for
    it is reported, not passed on."""
    child = Child(["true"], grace=1.0, stop=StopRequest())
    _pass_on(child, signal.SIGHUP)
    assert events(logs, "secretwatch.signal_not_passed_on") == [
        {"event": "secretwatch.signal_not_passed_on", "signal": "SIGHUP", "log_level": "warning"}
    ]


def test_a_second_stopping_signal_goes_to_the_command_at_once(vol: AtomicVolume) -> None:
    """After SIGTERM, run gives the command its grace period; a SIGINT then reaches the
    command at once (as with an init process), rather than waiting out the grace."""
    with running(vol, "--grace", "60", child_args=("--linger",)) as run:
        first = run.said()
        run.process.send_signal(signal.SIGTERM)
        assert run.said() == {**first, "says": "TERM"}  # and it lingers
        run.process.send_signal(signal.SIGINT)  # no handler: a KeyboardInterrupt ends it
        assert run.wait() == 128 + signal.SIGINT


def test_sigterm_during_a_restart_starts_no_new_command(vol: AtomicVolume) -> None:
    """A SIGTERM while a restart waits for the old command takes that command over: run
    ends within one grace period and starts no new command after the stop."""
    with running(vol, "--grace", "1", child_args=("--linger",)) as run:
        first = run.said()
        vol.write({"token": CANARY + "-2"})
        assert run.said() == {**first, "says": "TERM"}  # the restart's; it lingers
        run.process.send_signal(signal.SIGTERM)
        assert run.wait() == 128 + signal.SIGKILL  # killed at the end of the grace
    started = [e for e in run.history if e["event"] == "secretwatch.child_started"]
    assert len(started) == 1, run.output()


def test_what_ignores_sigterm_in_the_group_is_killed_once_the_command_ends(
    vol: AtomicVolume,
) -> None:
    """A process the command started that ignores SIGTERM does not outlive the command: once
    the command has ended (at a restart, and at the stop), what is left of its group is
    killed."""
    with running(vol, child_args=("--with-stubborn-grandchild",)) as run:
        first = run.said()
        vol.write({"token": CANARY + "-2"})
        assert run.said()["says"] == "TERM"
        second = run.said()
        assert gone(int(first["grandchild"]))
        assert run.stop(signal.SIGTERM) == 7
        assert gone(int(second["grandchild"]))


def test_a_command_that_ends_well_ends_run(vol: AtomicVolume) -> None:
    with running(vol, child_args=("--exit-with", "0")) as run:
        assert run.said()["says"] == "started"
        assert run.wait() == 0


def test_a_command_that_fails_is_restarted_with_backoff(vol: AtomicVolume, tmp_path: Path) -> None:
    marker = str(tmp_path / "failed-once")
    with running(vol, child_args=("--exit-once-with", "3", "--marker", marker)) as run:
        exited = run.event("secretwatch.child_exited")
        assert exited["exit_code"] == 3
        restarting = run.event("secretwatch.child_restarting")
        assert (restarting["delay"], restarting["failures"]) == (1.0, 1)
        second = run.said()  # the second start runs
        assert second["says"] == "started"
        assert second["pid"] != exited["pid"]
        assert run.stop(signal.SIGTERM) == 7
        assert run.said() == {**second, "says": "TERM"}


def test_the_delay_grows_while_the_command_keeps_failing(vol: AtomicVolume) -> None:
    with running(vol, child_args=("--exit-with", "3")) as run:
        assert run.event("secretwatch.child_restarting")["delay"] == 1.0
        assert run.event("secretwatch.child_restarting")["delay"] == 2.0
        # no command running (waiting to start it again): ended by the signal
        assert run.stop(signal.SIGTERM) == 128 + signal.SIGTERM


def gone(pid: int) -> bool:
    """Wait (on a pidfd, not a sleep) until process ``pid`` has ended."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([descriptor], [], [], TIMEOUT)
        return bool(ready)
    finally:
        os.close(descriptor)


def test_what_the_command_started_ends_with_it(vol: AtomicVolume) -> None:
    """Restart and stop signal the command's process group, not only the command."""
    with running(vol, child_args=("--with-grandchild",)) as run:
        first = run.said()
        vol.write({"token": CANARY + "-2"})
        assert run.said()["says"] == "TERM"
        second = run.said()
        assert gone(int(first["grandchild"]))  # type: ignore[call-overload]
        assert run.stop(signal.SIGTERM) == 7
        assert gone(int(second["grandchild"]))  # type: ignore[call-overload]


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace_period(
    vol: AtomicVolume,
) -> None:
    with running(vol, "--grace", "0.5", child_args=("--ignore-term",)) as run:
        assert run.said()["says"] == "started"
        run.process.send_signal(signal.SIGTERM)
        run.event("secretwatch.child_killed")
        assert run.wait() == 128 + signal.SIGKILL


def test_sigterm_reaches_the_command_while_an_action_runs(
    vol: AtomicVolume, tmp_path: Path
) -> None:
    """A slow action does not hold back the command's SIGTERM (Kubernetes' grace period)."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    script = (
        "import json, sys; print(json.dumps({'says': 'exec-started'}), flush=True); "
        "open(sys.argv[1]).read()"
    )
    command = f"{sys.executable} -c {script!r} {gate}"
    with running(vol, "--on-change", "signal:HUP", "--exec", command) as run:
        first = run.said()
        vol.write({"token": CANARY + "-2"})
        assert run.said()["says"] == "HUP"
        assert run.said()["says"] == "exec-started"
        run.process.send_signal(signal.SIGTERM)
        assert run.said() == {**first, "says": "TERM"}  # while the action still runs
        with gate.open("w") as release:
            release.write("go")
        assert run.wait() == 7


def test_a_command_that_can_no_longer_start_ends_run(vol: AtomicVolume, tmp_path: Path) -> None:
    program = tmp_path / "server"
    program.write_text(f"#!{sys.executable}\n{CHILD}")
    program.chmod(0o755)
    process = Run("run", str(vol.path), "--debounce", "0", "--", str(program))
    try:
        assert process.said()["says"] == "started"
        program.unlink()  # the program is gone: a restart can't start it
        vol.write({"token": CANARY + "-2"})
        process.event("secretwatch.child_start_failed")
        assert process.wait() == 127
    finally:
        process.close()


def test_run_needs_a_command(vol: AtomicVolume) -> None:
    process = Sidecar("run", str(vol.path))
    try:
        assert process.wait() == 2  # a usage error
        assert "give the command after --" in process.output()
    finally:
        process.close()


def test_the_command_does_not_inherit_secretwatch_configuration(
    vol: AtomicVolume, tmp_path: Path
) -> None:
    """SECRETWATCH_* variables (a webhook's credentials, say) are not the command's."""
    out = tmp_path / "env"
    script = (
        "import os, sys; open(sys.argv[1], 'w').write(' '.join(sorted(k for k in os.environ "
        "if 'SECRETWATCH' in k or k == 'MY_SETTING')))"
    )
    env = {"SECRETWATCH_WEBHOOK_TIMEOUT": "3", "MY_SETTING": "1"}
    process = Run("run", str(vol.path), "--", sys.executable, "-c", script, str(out), env=env)
    try:
        process.event("secretwatch.child_exited")
        assert process.wait() == 0
    finally:
        process.close()
    assert out.read_text() == "MY_SETTING"
