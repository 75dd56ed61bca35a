"""The examples in examples/ run as real processes against a real volume."""

from __future__ import annotations

import json
import os
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


def service_key(clientid: str, **changes: object) -> str:
    key: dict[str, object] = {
        "clientid": clientid,
        "clientsecret": "CANARY-secret",
        "url": "https://tenant.authentication.example.com",
        "serviceurls": {"AI_API_URL": "https://api.ai.example.com"},
    }
    return json.dumps({**key, **changes})


def test_settings_service_key(tmp_path: Path) -> None:
    """settings_service_key.py parses the key, follows a rotation and rejects a bad key."""
    volume = AtomicVolume(tmp_path / "aicore-key")
    volume.write({"service-key": service_key("client-1")})
    command = [sys.executable, str(EXAMPLES / "settings_service_key.py"), str(volume.path)]
    env = {**os.environ, "AICORE_RESOURCE_GROUP": "team-a"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == (
                "loaded: client client-1 at https://api.ai.example.com/, token from "
                "https://tenant.authentication.example.com/, resource group team-a\n"
            )
            volume.write({"service-key": service_key("client-2")})
            assert process.stdout.readline().startswith("rotated: client client-2 at ")
            volume.write({"service-key": service_key("client-3", url="CANARY-not-a-url")})
            line = process.stdout.readline()
            assert line.startswith("rejected: AICore settings from ")
            assert "service-key.url: Input should be a valid URL" in line
            assert "CANARY" not in line
            volume.write({"service-key": service_key("client-4")})
            assert process.stdout.readline().startswith("rotated: client client-4 at ")
            process.send_signal(signal.SIGTERM)
            assert process.wait(TIMEOUT) == 0
        finally:
            if process.poll() is None:
                process.kill()
