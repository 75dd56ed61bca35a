"""The command line: ``secretwatch demo`` runs anywhere and prints no value."""

from __future__ import annotations

import subprocess
import sys
from itertools import count

import pytest

from secretwatch._cli import demo
from secretwatch._cli.main import cli


def test_demo_reports_versions_and_keys_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo loads, rotates, rejects and repairs; neither stdout nor logs show a value."""
    tokens = count()
    monkeypatch.setattr(demo, "_token", lambda: f"CANARY-{next(tokens)}")
    assert cli("demo") == 0
    out, err = capsys.readouterr()
    assert "loaded    version 1: keys config.json, password, username" in out
    assert "rejected  key 'config.json'" in out
    assert "still serving version 4" in out
    assert "repaired  version 5: modified config.json" in out
    assert "sidecar: secretwatch watch " in out
    assert "rotated   the webhook got version 2: changed password" in out
    assert "replicated into default, team-b" in out
    assert "applied   version 2 in the deployment" in out
    assert "secretwatch.rejected" in err  # the structured log went to stderr
    assert next(tokens) > 0
    for text in (out, err):
        assert "CANARY" not in text
        assert "api.example.com" not in text


def test_python_m_secretwatch_demo() -> None:
    """``python -m secretwatch demo`` exits 0, as the README promises."""
    done = subprocess.run(
        [sys.executable, "-m", "secretwatch", "demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "no value was printed" in done.stdout
    assert "the webhook got version 2: changed password" in done.stdout  # the sidecar
    assert done.stdout.rstrip().endswith("applied   version 2 in the deployment")  # operator


def test_help_and_missing_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists the subcommands; no subcommand is an error, not a silent success."""
    assert cli("--help") == 0
    out = capsys.readouterr().out
    for command in ("watch", "run", "show", "rotate", "status", "demo"):
        assert command in out
    assert cli() != 0


def test_the_sidecar_without_its_extra_says_what_to_install(tmp_path: object) -> None:
    """Without httpx (the sidecar extra), watch says how to get it instead of a traceback."""
    script = (
        "import sys; sys.modules['httpx'] = None\n"
        "from secretwatch._cli.main import cli\n"
        "raise SystemExit(cli('watch', '/nonexistent', '--no-action'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "pip install 'path/to/secretwatch[sidecar]'" in done.stderr
    assert "Traceback" not in done.stderr
