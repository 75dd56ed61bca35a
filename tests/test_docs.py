"""Every Python and shell block of the README and the documentation runs, as written.

See ``tests/snippets.py`` for what is swapped for real things (paths, addresses) and how a
block that can't run here says so.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretwatch._cli.helptext import command_models
from secretwatch._cli.main import Cli
from secretwatch._cli.reference import reference
from secretwatch.aicore import Scope, SecretsAPI
from secretwatch.testing import AtomicVolume, FakeAICore

from .certificates import self_signed
from .conftest import TIMEOUT
from .sidecar import Receiver, Sidecar
from .snippets import ROOT, Block, all_blocks

PYTHON = all_blocks("python")
SHELL = all_blocks("sh")
EXAMPLE_PATH = "/etc/my-generic-secret"
SETTINGS_PATH = "/etc/db-secret"
TLS_PATH = "/etc/tls"
CANARY = "CANARY-docs-value"

# a server for ``my-server``: says when it is ready, runs until SIGTERM (then exits 0),
# ignores SIGHUP
SERVER = (
    "import signal, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "print('{\"ready\": true}', flush=True)\n"
    "while True:\n"
    "    signal.pause()\n"
)


def test_the_pages_have_blocks_and_the_readme_starts_simple() -> None:
    """The pages show Python and shell blocks; the README's first is the plain ``watch``."""
    assert len(PYTHON) >= 10
    assert len(SHELL) >= 8
    readme = [block for block in PYTHON if block.page.name == "README.md"]
    assert "secretwatch.watch(" in readme[0].code
    assert "watch_settings" not in readme[0].code
    assert sum(EXAMPLE_PATH in block.code for block in PYTHON) >= 3


def test_every_block_that_is_not_run_says_why() -> None:
    """A block is run by these tests, or names the test or CI step that runs it, or why not."""
    for block in SHELL + PYTHON:
        if block.marker is None:
            continue
        kind, _, reason = block.marker.partition(":")
        if kind == "run-by":
            test = ROOT / reason.strip()
            assert test.is_file(), block.name
            command = block.commands()[-1].split()
            script = next(word for word in command if word.startswith("examples"))
            script = script.replace(".", "/").removesuffix("/py").split(":")[0]
            assert script.split("/")[1] in test.read_text(), f"{block.name}: {script}"
        elif kind == "not-run":
            assert len(reason.strip()) > 20, f"{block.name}: say why"
        else:
            assert kind in ("test-command", "demo-command"), f"{block.name}: {block.marker}"
            assert (
                "<!-- " + kind + " -->"
                in (ROOT / ".ci" / "run").read_text() + (ROOT / "README.md").read_text()
            )


# --- Python ----------------------------------------------------------------------------


def run_python(block: Block, volume: AtomicVolume) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    settings = AtomicVolume(volume.path.parent / "db-secret")
    settings.write({"password": "p1"})
    code = block.code.replace(EXAMPLE_PATH, str(volume.path))
    code = code.replace(SETTINGS_PATH, str(settings.path))
    if TLS_PATH in code:  # a kubernetes.io/tls volume, with a pair that loads
        certificate, key, _ = self_signed("docs")
        tls = AtomicVolume(volume.path.parent / "tls")
        tls.write({"tls.crt": certificate, "tls.key": key})
        code = code.replace(TLS_PATH, str(tls.path))
    exec(compile(code, block.name, "exec", dont_inherit=True), namespace)
    return namespace


@pytest.fixture
def example_volume(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "my-generic-secret")
    volume.write({"some-credential": "c1", "other": "o1"})
    return volume


@pytest.mark.parametrize("block", PYTHON, ids=lambda block: block.name)
def test_python_block_runs(
    block: Block,
    example_volume: AtomicVolume,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each Python block runs; a block that defines a test or a coroutine has it called."""
    assert block.marker is None, f"{block.name}: Python blocks are all run"
    if "SecretsAPI" in block.code and "def test_" not in block.code:  # the operator's
        with FakeAICore(resource_groups=("default", "team-b")) as api:
            monkeypatch.setenv("AICORE_SERVICE_KEY", json.dumps(api.service_key()))
            with SecretsAPI.from_service_key(api.service_key()) as client:
                client.create("shared-key", data={"token": "old"}, scope=Scope.tenant_wide())
            run_python(block, example_volume)
            assert api.data("shared-key", scope="*") == {"token": b"new value"}
        assert "['default', 'team-b']" in capsys.readouterr().out
        return
    namespace = run_python(block, example_volume)
    tests = [name for name in namespace if name.startswith("test_")]
    for name in tests:  # a test as the page shows it, with the fixtures it names
        fixtures = {"secret_volume": AtomicVolume(tmp_path / name), "monkeypatch": monkeypatch}
        arguments = inspect.signature(namespace[name]).parameters
        namespace[name](**{argument: fixtures[argument] for argument in arguments})
    if "follow" in namespace:
        asyncio.run(follow_one_rotation(namespace["follow"], example_volume))
        assert "rotated, now version 2" in capsys.readouterr().out


async def follow_one_rotation(follow: Any, volume: AtomicVolume) -> None:
    import secretwatch

    with secretwatch.watch(volume.path, debounce=0) as secrets:
        task = asyncio.ensure_future(follow(secrets))
        await asyncio.sleep(0)  # one loop turn: the iterator subscribes
        delivered = threading.Event()
        secrets.subscribe(lambda change: delivered.set())  # called after follow's subscription
        await asyncio.to_thread(volume.write, {"some-credential": "c2", "other": "o1"})
        assert await asyncio.to_thread(delivered.wait, TIMEOUT)
        secrets.stop()  # ends the iteration, after follow has had the change
        await asyncio.wait_for(task, TIMEOUT)


# --- shell -----------------------------------------------------------------------------


class Sandbox:
    """What the shell blocks' placeholders stand for, made real."""

    def __init__(self, tmp_path: Path, receiver: Receiver, api: FakeAICore):
        self.volume = AtomicVolume(tmp_path / "credentials")
        self.volume.write({"username": "app", "password": CANARY})
        self.token = tmp_path / "new-token"
        self.token.write_text(CANARY + "-new")
        self.receiver = receiver
        self.env = {"AICORE_SERVICE_KEY": json.dumps(api.service_key())}
        with SecretsAPI.from_service_key(api.service_key()) as client:
            client.create("shared-key", data={"token": CANARY}, scope=Scope.tenant_wide())
            client.create("old-key", data={"token": CANARY}, scope=Scope.tenant_wide())
            client.create(
                "my-generic-secret",
                data={"some-credential": CANARY},
                scope=Scope.resource_group("default"),
            )

    def command(self, line: str) -> tuple[dict[str, str], list[str]]:
        """The environment and the arguments of ``python -m secretwatch`` for ``line``."""
        words = shlex.split(line)
        env = dict(self.env)
        while "=" in words[0] and not words[0].startswith("-"):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        assert words.pop(0) == "secretwatch", line
        args: list[str] = []
        for word in words:
            args += self.swap(word)
        return env, args

    def swap(self, word: str) -> list[str]:
        real = {
            "/etc/credentials": [str(self.volume.path)],
            EXAMPLE_PATH: [str(self.volume.path)],
            "http://127.0.0.1:8080/-/reload": [self.receiver.url("/-/reload")],
            ":9090": ["127.0.0.1:0"],
            "token=/run/new-token": [f"token={self.token}"],
            "my-server-ctl reload": ["true"],
            "my-server": [sys.executable, "-c", SERVER],
        }
        return real.get(word, [word])


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    receiver = Receiver()
    try:
        with FakeAICore(resource_groups=("default", "team-b"), replication_delay=0) as api:
            yield Sandbox(tmp_path, receiver, api)
    finally:
        receiver.close()


SHELL_COMMANDS = [
    pytest.param(block, line, id=f"{block.name}:{line[:60]}")
    for block in SHELL
    if block.marker is None
    for line in block.commands()
]


@pytest.mark.parametrize(("block", "line"), SHELL_COMMANDS)
def test_shell_command_runs(block: Block, line: str, sandbox: Sandbox) -> None:
    """Each command runs: one that ends exits 0; one that follows the volume starts, takes
    a rotation, and exits 0 on SIGTERM. Neither shows the canary value."""
    env, args = sandbox.command(line)
    following = args[0] in ("watch", "run") and "--once" not in args
    if not following:
        done = subprocess.run(
            [sys.executable, "-m", "secretwatch", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{line}: {done.stderr}"
        assert CANARY not in done.stdout + done.stderr
        if "--webhook" in args:
            assert sandbox.receiver.request().json()["version"] == 1
        return
    with Sidecar(*args, env=env) as sidecar:
        sidecar.event("secretwatch.watching")
        if args[0] == "run":
            assert sidecar.said() == {"ready": True}
        sandbox.volume.write({"username": "app", "password": CANARY + "-2"})
        sidecar.event("secretwatch.changed")
        if "--webhook" in args:
            assert sandbox.receiver.request().json()["version"] == 2
        if args[0] == "run" and "--on-change" not in args:  # restarted
            assert sidecar.said() == {"ready": True}
        assert sidecar.stop() == 0, sidecar.output()
        assert CANARY not in sidecar.output()


# --- the sidecar reference --------------------------------------------------------------


def test_the_reference_lists_every_option_of_every_command() -> None:
    """The generated reference has a section per command, and each option and variable."""
    text = reference()
    assert "<!-- cli-reference -->" in (ROOT / "docs" / "sidecar-reference.md").read_text()
    for command, model in command_models(Cli).items():
        assert f"## `secretwatch {command}`" in text
        for name, field in model.model_fields.items():
            option = field.alias or name
            assert f"`SECRETWATCH_{option.upper()}`" in text, option
            assert f"--{option.replace('_', '-')}" in text or option in ("path", "paths", "name")
