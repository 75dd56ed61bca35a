"""``secretwatch show``: keys, sizes, keyed fingerprints, version and writer; never a value."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from secretwatch.testing import AtomicVolume

from .conftest import bind_mount

CANARY = "CANARY-show-41c7"


def show(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SECRETWATCH_FINGERPRINT_KEY"}
    if key is not None:
        env["SECRETWATCH_FINGERPRINT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "secretwatch", "show", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.smoke
def test_json_for_a_kubelet_volume(tmp_path: Path) -> None:
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": CANARY, "nested/key": "x"})
    done = show(str(vol.path), "--json", key="team-key")
    assert done.returncode == 0, done.stderr
    description = json.loads(done.stdout)
    revision = os.readlink(vol.path / "..data")
    assert description == {
        "path": str(vol.path),
        "layout": "kubelet",
        "writer": "kubelet (atomic writer, ..data symlink)",
        "version": revision,
        "subpath_mount": False,
        "fingerprint_key": "SECRETWATCH_FINGERPRINT_KEY",
        "keys": [
            {"key": "nested/key", "size": 1, "fingerprint": fingerprint(b"team-key", b"x")},
            {
                "key": "password",
                "size": len(CANARY),
                "fingerprint": fingerprint(b"team-key", CANARY.encode()),
            },
        ],
    }
    assert CANARY not in done.stdout + done.stderr


def fingerprint(key: bytes, value: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, value, hashlib.sha256).hexdigest()[:32]


def test_fingerprints_are_keyed(tmp_path: Path) -> None:
    """With the same key, fingerprints compare; without one, each run has its own key, so a
    fingerprint is no unsalted hash that a weak password could be guessed from."""
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": "hunter2"})

    def prints(key: str | None) -> str:
        done = show(str(vol.path), "--json", key=key)
        return str(json.loads(done.stdout)["keys"][0]["fingerprint"])

    assert prints("k") == prints("k") == fingerprint(b"k", b"hunter2")
    assert prints("k") != prints("other")
    assert prints(None) != prints(None)
    unsalted = hashlib.sha256(b"hunter2").hexdigest()
    assert unsalted[:32] not in prints(None)


def test_text_output(tmp_path: Path) -> None:
    directory = tmp_path / "plain"
    directory.mkdir()
    (directory / "api-key").write_text(CANARY)
    done = show(str(directory))
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == f"path:     {directory}"
    assert lines[1] == "writer:   plain directory"
    assert any(line.startswith("api-key ") and f" {len(CANARY)} " in line for line in lines)
    assert "random key" in done.stdout
    assert CANARY not in done.stdout + done.stderr


def test_a_missing_volume_is_a_clear_error(tmp_path: Path) -> None:
    done = show(str(tmp_path / "missing"))
    assert done.returncode == 1
    assert done.stderr.strip() == f"secretwatch show: {tmp_path / 'missing'} does not exist"


def test_subpath_mount_is_flagged(tmp_path: Path) -> None:
    """A single file mounted over another (what subPath does) never sees a rotation."""
    source = tmp_path / "source"
    source.write_text(CANARY)
    target = tmp_path / "mounted" / "token"
    target.parent.mkdir()
    target.write_text("placeholder")
    with bind_mount(source, target):
        done = show(str(target), "--json")
        assert json.loads(done.stdout)["subpath_mount"] is True
        text = show(str(target)).stdout
        assert "warning:  a subPath mount" in text
    assert CANARY not in done.stdout + text


def test_names_are_escaped_as_text(tmp_path: Path) -> None:
    """A ..data target named with an escape sequence and a newline is printed escaped: it
    can't colour the terminal nor forge a line of the output (JSON keeps the real name)."""
    volume = tmp_path / "secret"
    revision = "..2026\x1b[31m\nversion:  forged"
    (volume / revision).mkdir(parents=True)
    (volume / revision / "token").write_text(CANARY)
    (volume / "..data").symlink_to(revision)
    done = show(str(volume))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("version:")] == [
        "version:  ..2026\\x1b[31m\\nversion:  forged"
    ]
    assert CANARY not in done.stdout
    as_json = show(str(volume), "--json")
    assert json.loads(as_json.stdout)["version"] == revision
