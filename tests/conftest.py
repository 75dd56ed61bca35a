"""Shared helpers: recorders that wait on queues (never on sleep) and volume factories."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

import secretwatch
from secretwatch.testing import AtomicVolume

TIMEOUT = 10.0  # generous: a wait that times out is a failure, not a pause


class Recorder:
    """Collects a watcher's changes and errors in queues, for tests to wait on."""

    def __init__(self, watcher: secretwatch.SecretWatcher, **subscribe: object):
        self.changes: queue.SimpleQueue[secretwatch.Change] = queue.SimpleQueue()
        self.errors: queue.SimpleQueue[secretwatch.SecretWatchError] = queue.SimpleQueue()
        watcher.subscribe(self.changes.put, **subscribe)  # type: ignore[arg-type]
        watcher.subscribe_errors(self.errors.put)

    def change(self, timeout: float = TIMEOUT) -> secretwatch.Change:
        """The next change; fails the test when none comes within ``timeout``."""
        try:
            return self.changes.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no change within {timeout} s")

    def change_where(self, key: str, value: object) -> secretwatch.Change:
        """The first change whose new ``key`` is ``value``: an in-place writer has no commit
        point, so a reader may see its file half written first."""
        while (change := self.change()).new.get(key) != value:
            pass
        return change

    def error(self, timeout: float = TIMEOUT) -> secretwatch.SecretWatchError:
        """The next rejection; fails the test when none comes within ``timeout``."""
        try:
            return self.errors.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no rejection within {timeout} s")


def aicore_cli(
    service_key: Mapping[str, Any] | None, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """``python -m secretwatch ARGS`` with ``service_key`` as its AI Core credentials, and
    ``variables``: no other ``AICORE_*`` variable, no ``VCAP_SERVICES``, and a profile
    directory that does not exist unless ``AICORE_HOME`` is given."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AICORE_") and k != "VCAP_SERVICES"
    }
    env["AICORE_HOME"] = os.path.join(os.devnull, "no-aicore-home")
    if service_key is not None:
        env["AICORE_SERVICE_KEY"] = json.dumps(service_key)
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-m", "secretwatch", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.fixture
def volume(tmp_path: Path) -> AtomicVolume:
    """A kubelet-style volume with two keys, written once."""
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"username": "app", "password": "first"})
    return vol


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Every structlog event emitted during the test (from any thread)."""
    capture = LogCapture()
    structlog.configure(processors=[capture])
    try:
        yield capture
    finally:
        structlog.reset_defaults()


def events(capture: LogCapture, name: str) -> list[dict[str, object]]:
    """The captured log entries whose event is ``name``."""
    return [entry for entry in capture.entries if entry["event"] == name]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Undo any structlog configuration a test made (the CLI configures it)."""
    yield
    structlog.reset_defaults()


@contextlib.contextmanager
def bind_mount(source: Path, target: Path) -> Iterator[None]:
    """Bind-mount ``source`` over ``target`` (what a subPath mount is); skip where impossible."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "--bind", str(source), str(target)], check=False, capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)
