"""The shutdown rule, for every mix of actions: real ``secretwatch`` processes, real peers.

The rule: on SIGTERM or SIGINT the attempt that is running finishes (bounded by its own
timeout), no attempt starts after the stop, every remaining action of that change and of
the queued changes is logged once as skipped, a failure that will not be retried says
``retrying: false`` (and ``action_gave_up`` says the stop cut its retries short), and
``watch`` exits 0.

Which mixes. The sidecar runs a change's actions in one order (webhooks, the signal, the
command), so what can differ when a stop comes is the kind of the action running (how its
attempt is bounded and ends), how that attempt ends, and what is left after it. Each kind
is the running action in each of three ways: slow, then succeeding; slow, then failing
(the stop lands during the attempt); failing at once (the stop lands in the backoff before
its retry). The nine cases spread the actions configured so that each kind runs first, in
the middle and last, with several actions after it, one, or none, and the stop alternates
between SIGTERM and SIGINT. The actions before the running one succeed, and those after it
would succeed and be seen by their peers, were they run. Every case also has two changes
queued (a later version of the same volume, and another volume's). A full product (3 kinds
x 3 outcomes x the sets and states of the other actions) would start over a hundred
sidecars, and those other dimensions don't reach the code that stops: the actions after the
running one never run. ``--once`` and ``run`` are checked with a mix each.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import LogCapture

from secretwatch import Change
from secretwatch._cli.sidecar.actions import Event
from secretwatch._cli.sidecar.config import ActionOptions
from secretwatch._cli.sidecar.service import Service
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, events
from .hostile_webhooks import HostileServer, held
from .sidecar import Receiver, Sidecar

ATTEMPTS = ("secretwatch.action_failed", "secretwatch.action_done")

# an --exec command: says it ran (on the sidecar's stdout), then exits with the code it is
# given, or with the code written to its gate (a FIFO: it waits until the test writes)
EXEC = """
import os, sys
print("exec-ran", os.environ["SECRETWATCH_PATH"], os.environ["SECRETWATCH_VERSION"], flush=True)
mode, arg = sys.argv[1:3]
if mode == "gate":
    with open(arg) as gate:
        arg = gate.read()
sys.exit(int(arg or 1))
"""

# the process that --signal HUP reaches: says HUP for each, and ends on SIGTERM
TARGET = """
import signal, sys
signal.signal(signal.SIGHUP, lambda *_: print("HUP", flush=True))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    signal.pause()
"""


class Gate:
    """A FIFO an action reads (the command its exit code, the signal its pid file): the
    action waits in the read until the test :meth:`release` s it."""

    def __init__(self, path: Path):
        os.mkfifo(path)
        self.path = path
        self.opened = threading.Event()  # the action has opened it: it is under way
        self._writer: int | None = None
        self._thread = threading.Thread(target=self._open, daemon=True)
        self._thread.start()

    def _open(self) -> None:
        self._writer = os.open(self.path, os.O_WRONLY)  # returns once a reader opens it
        self.opened.set()

    def wait_opened(self) -> None:
        assert self.opened.wait(TIMEOUT), f"nothing opened {self.path} within {TIMEOUT} s"

    def release(self, answer: str) -> None:
        """Give the action its answer and the end of the file."""
        assert self._writer is not None
        os.write(self._writer, answer.encode())
        os.close(self._writer)
        self._writer = None

    def close(self) -> None:
        if not self.opened.is_set():  # a reader of our own ends the writer's wait
            os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            self._thread.join(TIMEOUT)
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None


@dataclass(frozen=True)
class Mix:
    """The actions configured (in the sidecar's order), the one running when the stop
    comes, and how that one goes: ``slow`` (succeeds once released), ``slow-fail`` (fails
    once released) or ``fails`` (fails at once: the stop comes in its backoff)."""

    actions: tuple[str, ...]
    running: str
    outcome: str
    stop: signal.Signals = signal.SIGTERM

    @property
    def after(self) -> tuple[str, ...]:
        """The actions after the running one in a change."""
        return self.actions[self.actions.index(self.running) + 1 :]

    def __str__(self) -> str:
        actions = "+".join(name.upper() if name == self.running else name for name in self.actions)
        return f"{actions}:{self.outcome}:{self.stop.name}"


TERM, INT = signal.SIGTERM, signal.SIGINT
MIXES = [
    Mix(("webhook1", "webhook2", "signal", "exec"), "webhook1", "slow", TERM),
    Mix(("webhook1", "exec"), "webhook1", "slow-fail", INT),
    Mix(("webhook1", "signal"), "webhook1", "fails", TERM),
    Mix(("signal", "exec"), "signal", "slow", INT),
    Mix(("webhook1", "signal", "exec"), "signal", "slow-fail", TERM),
    Mix(("webhook1", "signal"), "signal", "fails", INT),
    Mix(("exec",), "exec", "slow", TERM),
    Mix(("webhook1", "exec"), "exec", "slow-fail", INT),
    Mix(("webhook1", "signal", "exec"), "exec", "fails", TERM),
]


class Peers:
    """The peers of a mix's actions (webhook servers, the signalled process, the command's
    gate), the sidecar's options that name them, and what each of them saw."""

    def __init__(self, mix: Mix, tmp_path: Path, stack: contextlib.ExitStack):
        self.mix = mix
        self.options: list[str] = []
        self.targets: dict[str, str] = {}  # action -> the target its log events name
        self._seen: dict[str, Callable[[Sidecar], int]] = {}  # action -> attempts its peer saw
        self._started: Callable[[], None] = lambda: None
        self._release: Callable[[], None] = lambda: None
        for name in mix.actions:
            how = mix.outcome if name == mix.running else "succeeds"
            if name.startswith("webhook"):
                self._webhook(name, how, stack)
            elif name == "signal":
                self._signal(how, tmp_path, stack)
            else:
                self._exec(how, tmp_path, stack)

    def _webhook(self, name: str, how: str, stack: contextlib.ExitStack) -> None:
        number = int(name.removeprefix("webhook"))
        if how.startswith("slow"):
            release = threading.Event()
            stack.callback(release.set)  # before the server closes (a stack unwinds backwards)
            server = stack.enter_context(
                HostileServer(held(release, 200 if how == "slow" else 500), tls=None)
            )
            taken = []  # the connection that started() took from the queue
            self._started = lambda: taken.append(server.connection())
            self._release = release.set
            self._seen[name] = lambda sidecar: len(taken) + server.connections.qsize()
            port, url = server.port, server.url()
        else:
            receiver = Receiver(status=200 if how == "succeeds" else 500)
            stack.callback(receiver.close)
            self._seen[name] = lambda sidecar: receiver.requests.qsize()
            port, url = receiver.port, receiver.url()
        self.options += ["--webhook", url]
        self.targets[name] = f"#{number} http://127.0.0.1:{port}/..."

    def _signal(self, how: str, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        target = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True)
        stack.callback(_end, target)
        assert target.stdout is not None
        assert target.stdout.readline() == "ready\n"  # its handler is in place
        pid_file = tmp_path / "pid"
        if how == "succeeds":
            pid_file.write_text(str(target.pid))
        elif how.startswith("slow"):  # the pid file is a FIFO: reading it waits for the test
            gate = Gate(pid_file)
            stack.callback(gate.close)
            answer = str(target.pid) if how == "slow" else "none"
            self._started = gate.wait_opened
            self._release = lambda: gate.release(answer)
        # (fails: no pid file at all)
        self.options += ["--signal", "HUP", "--pid-file", str(pid_file)]
        self.targets["signal"] = f"pid file {pid_file}"
        self._seen["signal"] = lambda sidecar: _end(target).count("HUP")  # the signals received

    def _exec(self, how: str, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        args = ["exit", "0" if how == "succeeds" else "3"]
        if how.startswith("slow"):
            gate = Gate(tmp_path / "gate")
            stack.callback(gate.close)
            args = ["gate", str(gate.path)]
            self._started = gate.wait_opened
            self._release = lambda: gate.release("0" if how == "slow" else "3")
        self.options += ["--exec", shlex.join([sys.executable, "-c", EXEC, *args])]
        self.targets["exec"] = sys.executable
        self._seen["exec"] = lambda sidecar: sum(
            line.startswith("exec-ran ") for line in sidecar.lines
        )

    def wait_running(self, sidecar: Sidecar) -> None:
        """Until the running action is under way: in its attempt (slow), or in the backoff
        after its first failure (fails)."""
        if self.mix.outcome == "fails":
            found = logged(sidecar, "secretwatch.action_failed", attempt=1)
            assert found["target"] == self.targets[self.mix.running]
            assert found["retrying"] is True
        else:
            self._started()

    def release(self) -> None:
        """Let the running attempt end (a slow one; one that fails at once has ended)."""
        self._release()

    def seen(self, name: str, sidecar: Sidecar) -> int:
        """The attempts of action ``name`` its peer saw (for the signal: the signals that
        reached the process); call it once the sidecar has exited."""
        return self._seen[name](sidecar)


def _end(process: subprocess.Popen[str]) -> str:
    """End the signalled process (SIGTERM, handled after any SIGHUP pending: signals are
    handled lowest number first); all it said."""
    if process.poll() is None:
        process.terminate()
    output, _ = process.communicate(timeout=TIMEOUT)
    return output or ""


def logged(sidecar: Sidecar, name: str, **fields: object) -> dict[str, Any]:
    """The first event ``name`` (with these fields) the sidecar logged, read or not, waiting
    for it if need be."""

    def first() -> dict[str, Any] | None:
        return next(
            (
                event
                for event in sidecar.history
                if event["event"] == name and all(event.get(k) == v for k, v in fields.items())
            ),
            None,
        )

    with sidecar.logged:
        sidecar.logged.wait_for(
            lambda: first() or sidecar.history[-1:] == [{"event": "(exited)"}], TIMEOUT
        )
        event = first()
    if event is None:
        pytest.fail(f"no {name} {fields} within {TIMEOUT} s: {sidecar.output()}")
    return event


@pytest.fixture
def volumes(tmp_path: Path) -> tuple[AtomicVolume, AtomicVolume]:
    """Two volumes, at version 1."""
    first, second = AtomicVolume(tmp_path / "a"), AtomicVolume(tmp_path / "b")
    first.write({"token": "a1"})
    second.write({"token": "b1"})
    return first, second


# every attempt is bounded well inside TIMEOUT, and so is a stop (the longest plus 2 s)
BOUNDS = ("--webhook-timeout", "5", "--exec-timeout", "5", "--webhook-retries", "5")


def check_stop(
    sidecar: Sidecar,
    peers: Peers,
    changed: tuple[str, int],
    queued: list[tuple[str, int]],
) -> None:
    """The rule, read from the log and from the peers once the sidecar has exited: the
    running action was the ``changed`` volume version's, and ``queued`` changes waited."""
    mix, targets = peers.mix, peers.targets
    history = [event for event in sidecar.history if event["event"] != "(exited)"]
    names = [event["event"] for event in history]
    assert names.count("secretwatch.stopping") == 1, sidecar.output()
    assert "secretwatch.actions_abandoned" not in names
    stop = names.index("secretwatch.stopping")
    running = targets[mix.running]

    # the running attempt finishes, and is the last: nothing starts after the stop
    after = [event for event in history[stop:] if event["event"] in ATTEMPTS]
    assert len(after) <= 1, sidecar.output()  # one that fails at once: 0, or its retry's
    for event in after:
        assert (event["target"], event["path"], event["volume_version"]) == (running, *changed)
        if event["event"] == "secretwatch.action_failed":
            assert event["retrying"] is False
    if mix.outcome == "slow":
        assert [event["event"] for event in after] == ["secretwatch.action_done"]
    if mix.outcome == "slow-fail":
        assert [event["event"] for event in after] == ["secretwatch.action_failed"]

    # a failure with retries left says the stop ended them
    gave_up = [event for event in history if event["event"] == "secretwatch.action_gave_up"]
    if mix.outcome == "slow":
        assert gave_up == []
    else:
        assert [(event["target"], event.get("stopping")) for event in gave_up] == [
            (running, True)
        ], sidecar.output()

    # every remaining action is reported skipped, once
    everything = [targets[name] for name in mix.actions]
    expected = [(path, version, everything) for path, version in queued]
    if mix.after:
        expected.append((*changed, [targets[name] for name in mix.after]))
    skipped = [
        (event["path"], event["volume_version"], event["actions"])
        for event in history
        if event["event"] == "secretwatch.actions_skipped"
    ]
    assert sorted(skipped) == sorted(expected), sidecar.output()

    # the actions up to the running one ran (each for that change only), the rest never;
    # and each peer saw exactly the attempts logged: none went unlogged
    attempts = [event for event in history if event["event"] in ATTEMPTS]
    assert {(event["path"], event["volume_version"]) for event in attempts} == {changed}
    ran = mix.actions[: mix.actions.index(mix.running) + 1]
    assert {event["target"] for event in attempts} == {targets[name] for name in ran}
    for name in mix.actions:
        mine = [event for event in attempts if event["target"] == targets[name]]
        if name == "signal":  # a failed attempt signals nobody
            mine = [event for event in mine if event["event"] == "secretwatch.action_done"]
        assert peers.seen(name, sidecar) == len(mine), name


@pytest.mark.parametrize("mix", MIXES, ids=str)
def test_a_stop_lets_the_running_action_finish_and_skips_the_rest(
    mix: Mix, volumes: tuple[AtomicVolume, AtomicVolume], tmp_path: Path
) -> None:
    """Stopped while one action of a change runs (slow, or failed and waiting to retry):
    that attempt is the last, the actions after it and the queued changes are each reported
    skipped once and never run, and ``watch`` exits 0."""
    first, second = volumes
    a, b = str(first.path), str(second.path)
    with contextlib.ExitStack() as stack:
        peers = Peers(mix, tmp_path, stack)
        sidecar = stack.enter_context(
            Sidecar("watch", a, b, "--debounce", "0", *BOUNDS, *peers.options)
        )
        logged(sidecar, "secretwatch.watching")
        first.write({"token": "a2"})
        peers.wait_running(sidecar)
        first.write({"token": "a3"})  # two changes wait their turn
        second.write({"token": "b2"})
        logged(sidecar, "secretwatch.changed", path=a, volume_version=3)
        logged(sidecar, "secretwatch.changed", path=b, volume_version=2)
        sidecar.process.send_signal(mix.stop)
        logged(sidecar, "secretwatch.stopping", signal=mix.stop.name)
        peers.release()
        assert sidecar.wait() == 0
        check_stop(sidecar, peers, changed=(a, 2), queued=[(a, 3), (b, 2)])


ONCE = [
    Mix(("webhook1", "signal", "exec"), "webhook1", "fails", TERM),
    Mix(("signal", "exec"), "exec", "slow", INT),
]


@pytest.mark.parametrize("mix", ONCE, ids=str)
def test_once_stops_by_the_same_rule(
    mix: Mix, volumes: tuple[AtomicVolume, AtomicVolume], tmp_path: Path
) -> None:
    """``--once`` stopped while the actions of its first volume run: the stop is logged,
    the running attempt is the last, the rest (and the next volume's) is reported skipped,
    and it exits 1: not every action was done."""
    first, second = volumes
    a, b = str(first.path), str(second.path)
    with contextlib.ExitStack() as stack:
        peers = Peers(mix, tmp_path, stack)
        args = ("watch", a, b, "--once", *BOUNDS, *peers.options)
        sidecar = stack.enter_context(Sidecar(*args))
        peers.wait_running(sidecar)
        sidecar.process.send_signal(mix.stop)
        logged(sidecar, "secretwatch.stopping", signal=mix.stop.name)
        peers.release()
        assert sidecar.wait() == 1
        check_stop(sidecar, peers, changed=(a, 1), queued=[(b, 1)])


RUN_CHILD = """
import signal, sys
signal.signal(signal.SIGHUP, lambda *_: print("HUP", flush=True))
signal.signal(signal.SIGTERM, lambda *_: (print("TERM", flush=True), sys.exit(7)))
print("started", flush=True)
while True:
    signal.pause()
"""


def test_run_stops_by_the_same_rule(
    volumes: tuple[AtomicVolume, AtomicVolume], tmp_path: Path
) -> None:
    """``run`` stopped while a webhook runs: the command gets SIGTERM at once, the webhook's
    attempt finishes, the command after it and the queued changes are reported skipped, and
    ``run`` exits with the command's exit code."""
    first, second = volumes
    a, b = str(first.path), str(second.path)
    mix = Mix(("webhook1", "exec"), "webhook1", "slow")
    with contextlib.ExitStack() as stack:
        peers = Peers(mix, tmp_path, stack)
        run = stack.enter_context(
            Sidecar(
                *("run", a, b, "--debounce", "0", "--on-change", "signal:HUP", *BOUNDS),
                *(*peers.options, "--", sys.executable, "-c", RUN_CHILD),
            )
        )
        assert run.stdout.get(timeout=TIMEOUT) == "started\n"
        first.write({"token": "a2"})
        assert run.stdout.get(timeout=TIMEOUT) == "HUP\n"  # the first action: done
        peers.wait_running(run)
        first.write({"token": "a3"})
        second.write({"token": "b2"})
        logged(run, "secretwatch.changed", path=a, volume_version=3)
        logged(run, "secretwatch.changed", path=b, volume_version=2)
        run.process.send_signal(signal.SIGTERM)
        assert run.stdout.get(timeout=TIMEOUT) == "TERM\n"  # while the webhook still runs
        peers.release()
        assert run.wait() == 7
    history = run.history
    skipped = [
        (event["path"], event["volume_version"], event["actions"])
        for event in history
        if event["event"] == "secretwatch.actions_skipped"
    ]
    everything = ["the command", peers.targets["webhook1"], sys.executable]
    assert sorted(skipped) == sorted(
        [(a, 2, [sys.executable]), (a, 3, everything), (b, 2, everything)]
    )
    names = [event["event"] for event in history]
    stop = names.index("secretwatch.stopping")
    after = [event for event in history[stop:] if event["event"] in ATTEMPTS]
    assert [(event["event"], event["target"]) for event in after] == [
        ("secretwatch.action_done", peers.targets["webhook1"])
    ]
    assert peers.seen("webhook1", run) == 1
    assert peers.seen("exec", run) == 0


class Recording:
    """An action that records the events it is called with."""

    kind = "exec"
    target = "recording"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


def test_a_change_not_yet_handed_over_at_the_stop_is_reported_skipped(
    volumes: tuple[AtomicVolume, AtomicVolume], logs: LogCapture
) -> None:
    """A change applied just before the stop, whose callback had not yet reached the
    sidecar (the watcher drops undelivered callbacks when it stops), is reported skipped,
    not lost without a word."""
    volume = volumes[0]
    recording = Recording()
    service = Service([str(volume.path)], ActionOptions(debounce=0), [recording])
    entered, release = threading.Event(), threading.Event()

    def ahead(change: Change) -> None:  # the sidecar's callback waits behind this one
        if change.old.version:
            entered.set()
            release.wait(TIMEOUT)

    service.watchers[0].subscribe(ahead)
    assert service.start()
    try:
        volume.write({"token": "a2"})
        assert entered.wait(TIMEOUT)  # version 2 is applied; its delivery waits
        service.runner.cancel()  # the stop request
        service.close()
    finally:
        release.set()
    assert recording.events == []
    skipped = events(logs, "secretwatch.actions_skipped")
    assert [(entry["path"], entry["volume_version"], entry["actions"]) for entry in skipped] == [
        (str(volume.path), 2, ["recording"])
    ]
