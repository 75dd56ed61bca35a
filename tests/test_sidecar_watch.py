"""``secretwatch watch`` as a real process: webhooks, signals, commands, --once, status."""

from __future__ import annotations

import base64
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT
from .sidecar import Receiver, Sidecar

CANARY = "CANARY-sidecar-8d2f"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def vol(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY + "-1"})
    return volume


@pytest.mark.smoke
def test_webhook_gets_one_post_per_rotation(vol: AtomicVolume, receiver: Receiver) -> None:
    url = receiver.url(userinfo="admin:hook-password@")
    with Sidecar("watch", str(vol.path), "--webhook", url, "--debounce", "0") as sidecar:
        sidecar.event("secretwatch.watching")
        for version in (2, 3):
            vol.write({"token": f"{CANARY}-{version}", "other": str(version)})
            request = receiver.request()
            assert request.method == "POST"
            assert request.path == "/reload"
            assert request.json() == {
                "path": str(vol.path),
                "version": version,
                "changed_keys": ["other", "token"],
            }
            expected = base64.b64encode(b"admin:hook-password").decode()
            assert request.headers["Authorization"] == f"Basic {expected}"
            sidecar.event("secretwatch.action_done", action="webhook", volume_version=version)
        assert receiver.requests.empty()  # one request per rotation
        assert sidecar.stop() == 0
    output = sidecar.output()
    assert "hook-password" not in output
    assert CANARY not in output


def test_webhook_down_then_up_is_retried(vol: AtomicVolume, tmp_path: Path) -> None:
    """The receiver is not listening at first: the action is retried until it is."""
    closed = Receiver()
    port = closed.port
    closed.close()  # the port is free again: connections are refused
    url = f"http://127.0.0.1:{port}/reload"
    args = ["watch", str(vol.path), "--webhook", url, "--debounce", "0", "--webhook-retries", "20"]
    with Sidecar(*args) as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        failed = sidecar.event("secretwatch.action_failed", action="webhook")
        assert failed["retrying"] is True
        assert "ConnectError" in failed["error"]
        receiver = Receiver(port=port)
        try:
            assert receiver.request().json()["version"] == 2
            done = sidecar.event("secretwatch.action_done", action="webhook")
            assert done["attempt"] > 1
        finally:
            receiver.close()
        assert sidecar.stop() == 0


def test_signal_by_pid_file(vol: AtomicVolume, tmp_path: Path) -> None:
    """SIGHUP reaches the process whose pid is in the pid file."""
    with subprocess.Popen(
        [sys.executable, "-c", HUP_PRINTER], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            run_signal_test(child, vol, tmp_path)
        finally:
            child.kill()


def test_signal_by_process_name(vol: AtomicVolume, tmp_path: Path) -> None:
    """SIGHUP reaches the processes of a name, as with shareProcessNamespace: true."""
    program = tmp_path / "swtest-hup-app"  # its name, as /proc/PID/comm shows it
    program.symlink_to(sys.executable)
    with subprocess.Popen(
        [str(program), "-c", HUP_PRINTER], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            run_signal_test(child, vol, tmp_path, ["--process-name", "swtest-hup-app"])
        finally:
            child.kill()


def run_signal_test(
    child: subprocess.Popen[str], vol: AtomicVolume, tmp_path: Path, target: list[str] | None = None
) -> None:
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    if target is None:
        pid_file = tmp_path / "app.pid"
        pid_file.write_text(f"{child.pid}\n")
        target = ["--pid-file", str(pid_file)]
    args = ["watch", str(vol.path), "--signal", "HUP", *target]
    with Sidecar(*args, "--debounce", "0") as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        assert child.stdout.readline() == "SIGHUP\n"
        sidecar.event("secretwatch.action_done", action="signal")
        assert sidecar.stop() == 0


HUP_PRINTER = """
import signal, sys
signal.signal(signal.SIGHUP, lambda *_: print("SIGHUP", flush=True))
print("ready", flush=True)
while True:
    signal.pause()
"""


def test_exec_gets_the_change_in_its_environment(vol: AtomicVolume, tmp_path: Path) -> None:
    """The change's path, version and keys; none of secretwatch's own settings."""
    out = tmp_path / "exec.out"
    script = (
        "import os, sys; open(sys.argv[1], 'w').write(' '.join("
        "f'{k}={v}' for k, v in sorted(os.environ.items()) if k.startswith('SECRETWATCH')))"
    )
    command = f"{sys.executable} -c {script!r} {out}"
    env = {"SECRETWATCH_EXEC": command, "SECRETWATCH_FINGERPRINT_KEY": "not for the command"}
    with Sidecar("watch", str(vol.path), "--debounce", "0", env=env) as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2", "new": "n"})
        sidecar.event("secretwatch.action_done", action="exec", volume_version=2)
        assert out.read_text() == (
            f"SECRETWATCH_CHANGED_KEYS=new,token SECRETWATCH_PATH={vol.path} SECRETWATCH_VERSION=2"
        )
        assert sidecar.stop() == 0


def test_exec_commands_get_the_default_signal_dispositions(
    vol: AtomicVolume, tmp_path: Path
) -> None:
    """watch takes no action on SIGHUP, SIGUSR1 and SIGUSR2, but its --exec commands don't
    inherit that: they get the signals' default actions (an ignored signal stays ignored
    across exec, a handled one does not)."""
    out = tmp_path / "ignored"
    script = "import sys; open(sys.argv[1], 'w').write(open('/proc/self/status').read())"
    command = f"{sys.executable} -c {script!r} {out}"
    with Sidecar("watch", str(vol.path), "--debounce", "0", "--exec", command) as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        sidecar.event("secretwatch.action_done", action="exec", volume_version=2)
        assert sidecar.stop() == 0
    (line,) = [line for line in out.read_text().splitlines() if line.startswith("SigIgn:")]
    ignored = int(line.split()[1], 16)
    for number in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        assert not ignored & (1 << (number - 1)), f"{number.name} is ignored"


def test_a_command_that_times_out_is_killed_with_what_it_started(vol: AtomicVolume) -> None:
    """The command and its children are killed, the failure is reported, and the next
    change runs the command again."""
    script = (
        "import subprocess, sys; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
        "print(child.pid, flush=True); child.wait()"
    )
    command = f"{sys.executable} -c {script!r}"
    args = ["watch", str(vol.path), "--exec", command, "--exec-timeout", "2"]
    with Sidecar(*args, "--debounce", "0", "--webhook-retries", "0") as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        grandchild = int(sidecar.stdout.get(timeout=TIMEOUT))
        with os.fdopen(os.pidfd_open(grandchild), "rb", buffering=0) as pidfd:
            failed = sidecar.event("secretwatch.action_failed", action="exec", volume_version=2)
            assert failed["error"].endswith("still running after 2.0 s (killed)")
            ended = select.select([pidfd], [], [], TIMEOUT)[0] == [pidfd]
            if not ended:
                os.kill(grandchild, signal.SIGKILL)  # not left behind by a failing test
            assert ended, "what the command started outlived it"
        vol.write({"token": CANARY + "-3"})  # still watching, still acting
        int(sidecar.stdout.get(timeout=TIMEOUT))
        sidecar.event("secretwatch.action_failed", action="exec", volume_version=3)
        assert sidecar.stop() == 0


def test_other_signals_do_not_stop_the_sidecar(vol: AtomicVolume, receiver: Receiver) -> None:
    args = ["watch", str(vol.path), "--webhook", receiver.url(), "--debounce", "0"]
    with Sidecar(*args) as sidecar:
        sidecar.event("secretwatch.watching")
        for number in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            sidecar.process.send_signal(number)
        vol.write({"token": CANARY + "-2"})
        assert receiver.request().json()["version"] == 2  # still watching
        assert sidecar.process.poll() is None
        assert sidecar.stop() == 0


def test_a_failing_command_is_reported_with_its_exit_code(vol: AtomicVolume) -> None:
    command = f"{sys.executable} -c 'raise SystemExit(3)'"
    args = ["watch", str(vol.path), "--exec", command, "--debounce", "0", "--webhook-retries", "1"]
    with Sidecar(*args, "--listen", "127.0.0.1:0") as sidecar:
        port = sidecar.event("secretwatch.listening")["port"]
        vol.write({"token": CANARY + "-2"})
        first = sidecar.event("secretwatch.action_failed", action="exec")
        assert first["error"].endswith("exit code 3")
        assert first["retrying"] is True
        assert sidecar.event("secretwatch.action_failed", action="exec")["retrying"] is False
        gave_up = sidecar.event("secretwatch.action_gave_up", action="exec")
        assert gave_up["attempts"] == 2
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT).text
        assert 'secretwatch_action_failures_total{kind="exec"} 2.0' in metrics
        assert sidecar.stop() == 0


def test_once_stops_retrying_on_sigterm(vol: AtomicVolume) -> None:
    closed = Receiver()
    closed.close()  # nobody listens there
    url = f"http://127.0.0.1:{closed.port}/reload"
    args = ["watch", str(vol.path), "--once", "--webhook", url, "--webhook-retries", "50"]
    with Sidecar(*args) as sidecar:
        sidecar.event("secretwatch.action_failed", action="webhook")
        assert sidecar.stop() == 1  # promptly: no 50 retries first


def test_once_runs_the_actions_once_and_exits(vol: AtomicVolume, receiver: Receiver) -> None:
    with Sidecar("watch", str(vol.path), "--once", "--webhook", receiver.url()) as sidecar:
        assert sidecar.wait() == 0
    assert receiver.request().json() == {
        "path": str(vol.path),
        "version": 1,
        "changed_keys": ["token"],
    }
    assert receiver.requests.empty()


def test_once_runs_nothing_for_a_change_during_its_run(vol: AtomicVolume, tmp_path: Path) -> None:
    """--once runs the actions for the version in force when it starts, and nothing else: a
    rotation while they run starts no action beside them (one change at a time)."""
    out, gate = tmp_path / "versions", tmp_path / "gate"
    os.mkfifo(gate)
    script = f'echo "$SECRETWATCH_VERSION" >> {out}; [ "$SECRETWATCH_VERSION" != 1 ] || cat {gate}'
    with Sidecar(
        *("watch", str(vol.path), "--once", "--debounce", "0", "--exec", f"sh -c '{script}'")
    ) as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        sidecar.event("secretwatch.changed", volume_version=2)
        with gate.open("w") as release:
            release.write("go")
        assert sidecar.wait() == 0
    assert out.read_text() == "1\n"
    assert [
        e["volume_version"] for e in sidecar.history if e["event"] == "secretwatch.action_done"
    ] == [1]


def test_once_fails_clearly(vol: AtomicVolume, tmp_path: Path) -> None:
    """A missing volume, or an action that fails, ends --once with a non-zero exit code."""
    with Sidecar("watch", str(tmp_path / "missing"), "--once", "--no-action") as sidecar:
        assert sidecar.wait() == 1
    failed = [line for line in sidecar.lines if "secretwatch.start_failed" in line]
    assert failed
    assert "does not exist" in failed[0]
    command = f"{sys.executable} -c 'raise SystemExit(1)'"
    args = ["watch", str(vol.path), "--once", "--exec", command, "--webhook-retries", "0"]
    with Sidecar(*args) as sidecar:
        assert sidecar.wait() == 1


def test_configuration_from_the_environment(vol: AtomicVolume, receiver: Receiver) -> None:
    """SECRETWATCH_* variables; a repeatable option as a comma-separated list."""
    env = {
        "SECRETWATCH_WEBHOOK": f"{receiver.url('/a')},{receiver.url('/b')}",
        "SECRETWATCH_DEBOUNCE": "0",
        "SECRETWATCH_WEBHOOK_METHOD": "PUT",
        "SECRETWATCH_WEBHOOK_STATUS": "200",
    }
    with Sidecar("watch", str(vol.path), env=env) as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        requests = [receiver.request(), receiver.request()]
        assert sorted(request.path for request in requests) == ["/a", "/b"]
        assert {request.method for request in requests} == {"PUT"}
        assert sidecar.stop() == 0


@pytest.mark.smoke
def test_health_readiness_and_metrics(vol: AtomicVolume) -> None:
    args = ["watch", str(vol.path), "--listen", "127.0.0.1:0", "--debounce", "0", "--no-action"]
    with Sidecar(*args, "--max-bytes", "100") as sidecar:
        listening = sidecar.event("secretwatch.listening")
        base = f"http://127.0.0.1:{listening['port']}"
        assert httpx.get(f"{base}/healthz", timeout=TIMEOUT).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=TIMEOUT).status_code == 200
        vol.write({"token": CANARY + "-2"})
        sidecar.event("secretwatch.changed", volume_version=2)
        vol.write({"token": "x" * 101})  # rejected: larger than --max-bytes
        sidecar.event("secretwatch.rejected")
        metrics = httpx.get(f"{base}/metrics", timeout=TIMEOUT).text
        path = str(vol.path)
        assert f'secretwatch_reloads_total{{path="{path}"}} 1.0' in metrics
        assert f'secretwatch_rejected_reloads_total{{path="{path}"}} 1.0' in metrics
        assert f'secretwatch_version{{path="{path}"}} 2.0' in metrics
        assert f'secretwatch_watch_mode{{mode="inotify",path="{path}"}} 1.0' in metrics
        assert "secretwatch_last_reload_timestamp_seconds" in metrics
        assert "secretwatch_action_failures_total" in metrics
        assert CANARY not in metrics
        assert httpx.get(f"{base}/nothing", timeout=TIMEOUT).status_code == 404
        assert sidecar.stop() == 0


def test_bad_options_are_refused_clearly(vol: AtomicVolume) -> None:
    """One line per problem, naming the option; never a traceback, never the values."""
    hook = "http://admin:hook-password@127.0.0.1:9/reload"
    for args, message in [
        (["--signal", "HUP"], "--signal needs exactly one of --pid-file and --process-name"),
        (["--signal", "NOPE", "--pid-file", "x"], "--signal: unknown signal: use a name such"),
        (["--listen", "nowhere"], "--listen: listen must be HOST:PORT"),
        (["--webhook", hook, "--pid-file", "x"], "--pid-file and --process-name need --signal"),
        (["--webhook", "ftp://host/x"], "--webhook: each webhook must be a valid http:// or"),
        (["--webhook", "http://admin:hook-password#x@h/"], "--webhook: each webhook must be"),
        (["--webhook-method", "PO ST"], "--webhook-method: a method is a word such as POST"),
        (["--exec", "'unclosed"], "--exec: cannot split the command"),
        (["--debounce", "-1"], "--debounce: Input should be greater than or equal to 0"),
    ]:
        with Sidecar("watch", str(vol.path), *args) as sidecar:
            assert sidecar.wait() == 2
        output = sidecar.output()
        assert f"secretwatch: {message}" in output
        assert "Traceback" not in output
        assert "hook-password" not in output


@pytest.mark.parametrize(
    "args",
    [
        ["watch", "--webhook", "http://127.0.0.1:9/reload"],
        ["run", "--", sys.executable, "-c", "print('the command started')"],
    ],
    ids=["watch", "run"],
)
def test_a_port_in_use_is_refused_before_watching(
    vol: AtomicVolume, receiver: Receiver, args: list[str]
) -> None:
    """--listen on a port in use: exit 2 with one line naming the address, before a volume
    is loaded or a command started."""
    listen = f"127.0.0.1:{receiver.port}"
    command, *rest = args
    with Sidecar(command, str(vol.path), "--listen", listen, *rest) as sidecar:
        assert sidecar.wait() == 2
    assert sidecar.lines == [f"secretwatch: --listen {listen}: Address already in use\n"]


def test_help_describes_every_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "secretwatch", "watch", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    for option in [
        "--webhook",
        "--webhook-method",
        "--webhook-status",
        "--webhook-retries",
        "--webhook-timeout",
        "--signal",
        "--pid-file",
        "--process-name",
        "--exec",
        "--listen",
        "--once",
        "--debounce",
        "--resync",
        "--polling",
        "--log-format",
        "--log-level",
        "SECRETWATCH_",
    ]:
        assert option in done.stdout, option


def test_sigterm_lets_the_running_action_finish(vol: AtomicVolume, tmp_path: Path) -> None:
    """SIGTERM during an action: the action finishes, then the sidecar exits 0."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    script = "import sys; print('exec-started', flush=True); open(sys.argv[1]).read()"
    command = f"{sys.executable} -c {script!r} {gate}"
    with Sidecar("watch", str(vol.path), "--exec", command, "--debounce", "0") as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"token": CANARY + "-2"})
        assert sidecar.stdout.get(timeout=TIMEOUT) == "exec-started\n"
        sidecar.process.send_signal(signal.SIGTERM)
        sidecar.event("secretwatch.stopping")  # asked to stop while the command runs
        with gate.open("w") as release:  # the command may now end
            release.write("go")
        sidecar.event("secretwatch.action_done", action="exec", volume_version=2)
        assert sidecar.wait() == 0


@pytest.mark.smoke
def test_the_canary_shows_nowhere(vol: AtomicVolume, receiver: Receiver, tmp_path: Path) -> None:
    """Every output of the sidecar, with every action, rejection and endpoint in play."""
    url = receiver.url(f"/reload?token={CANARY}-query", userinfo=f"user:{CANARY}-hook@")
    command = f"{sys.executable} -c 'pass'"
    args = ["watch", str(vol.path), "--webhook", url, "--exec", command, "--debounce", "0"]
    texts: list[str] = []
    options = ["--listen", "127.0.0.1:0", "--log-level", "debug", "--max-bytes", "100"]
    with Sidecar(*args, *options) as sidecar:
        base = f"http://127.0.0.1:{sidecar.event('secretwatch.listening')['port']}"
        for payload in [
            {"token": CANARY + "-2"},
            {"token": CANARY * 10},  # rejected: larger than --max-bytes
            {"token": CANARY + "-3", "config.json": "{" + CANARY},
        ]:
            vol.write(payload)
            if len(payload["token"]) < 100:  # applied: the webhook is called
                texts.append(receiver.request().body.decode())  # the JSON body
            else:
                sidecar.event("secretwatch.rejected")
        texts.append(httpx.get(f"{base}/metrics", timeout=TIMEOUT).text)
        assert sidecar.stop() == 0
    texts.append(sidecar.output())
    shown = subprocess.run(
        [sys.executable, "-m", "secretwatch", "show", str(vol.path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    texts += [shown.stdout, shown.stderr]
    assert not [text for text in texts if CANARY in text]


def test_binary_keys_are_watched_like_any(tmp_path: Path, receiver: Receiver) -> None:
    """The sidecar never uses values: a keystore that is not text is a key like any other."""
    vol = AtomicVolume(tmp_path / "keystore")
    vol.write({"keystore.p12": b"\xff\xfe\x00binary"})
    with Sidecar("watch", str(vol.path), "--webhook", receiver.url(), "--debounce", "0") as sidecar:
        sidecar.event("secretwatch.watching")
        vol.write({"keystore.p12": b"\xff\xfe\x00binary-2"})
        assert receiver.request().json()["changed_keys"] == ["keystore.p12"]
        assert sidecar.stop() == 0


def test_commas_inside_urls_and_paths(tmp_path: Path, receiver: Receiver) -> None:
    """A list splits at commas before a new URL or absolute path only."""
    odd = AtomicVolume(tmp_path / "we,ird")
    odd.write({"token": "1"})
    plain = AtomicVolume(tmp_path / "plain")
    plain.write({"token": "1"})
    url = receiver.url("/reload?ids=1,2")
    env = {"SECRETWATCH_PATHS": f"{odd.path},{plain.path}"}
    with Sidecar("watch", "--once", "--webhook", url, env=env) as sidecar:
        assert sidecar.wait() == 0
    requests = [receiver.request(), receiver.request()]
    assert {request.path for request in requests} == {"/reload?ids=1,2"}
    assert {request.json()["path"] for request in requests} == {str(odd.path), str(plain.path)}


def test_a_missing_program_is_refused_at_start(vol: AtomicVolume) -> None:
    with Sidecar("watch", str(vol.path), "--exec", "no-such-program-4f2 --reload") as sidecar:
        assert sidecar.wait() == 2
    assert "--exec: its program is not found, or not executable" in sidecar.output()
    assert "no-such-program" not in sidecar.output()  # values are not quoted


def test_no_volume_is_a_usage_error() -> None:
    with Sidecar("watch", "--once") as sidecar:
        assert sidecar.wait() == 2
    assert "give the volumes to watch: PATH... or SECRETWATCH_PATHS" in sidecar.output()


def test_watch_without_an_action_is_refused_at_start(vol: AtomicVolume) -> None:
    """watch with no action would report ready and reload nothing: exit 2 with one line,
    before the volume is loaded."""
    with Sidecar("watch", str(vol.path), "--listen", "127.0.0.1:0") as sidecar:
        assert sidecar.wait() == 2
    assert sidecar.lines == [
        "secretwatch: give an action (--webhook, --webhook-file, --signal or --exec), or "
        "--no-action for a sidecar that only reports health and metrics\n"
    ]


def test_no_action_is_a_sidecar_that_only_reports(vol: AtomicVolume) -> None:
    """--no-action: the volume is watched and reported (ready, metrics), nothing is run;
    with an action as well, it is refused."""
    args = ["watch", str(vol.path), "--no-action", "--listen", "127.0.0.1:0", "--debounce", "0"]
    with Sidecar(*args) as sidecar:
        watching = sidecar.event("secretwatch.watching")
        assert watching["actions"] == []
        port = sidecar.event("secretwatch.listening")["port"]
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT).status_code == 200
        vol.write({"token": CANARY + "-2"})
        sidecar.event("secretwatch.changed", volume_version=2)  # and no action was run
        assert sidecar.stop() == 0
    with Sidecar("watch", str(vol.path), "--no-action", "--exec", "true") as sidecar:
        assert sidecar.wait() == 2
    assert sidecar.lines == ["secretwatch: --no-action and an action: give one or the other\n"]


def test_a_webhook_file_is_an_action(vol: AtomicVolume, receiver: Receiver, tmp_path: Path) -> None:
    """--webhook-file alone is an action: watch starts (here --once), and posts to its URL."""
    urls = tmp_path / "webhook"
    urls.write_text(receiver.url("/from-file") + "\n")
    with Sidecar("watch", str(vol.path), "--webhook-file", str(urls), "--once") as sidecar:
        assert sidecar.wait() == 0, sidecar.output()
    assert receiver.request().path == "/from-file"
