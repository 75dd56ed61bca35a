"""``import secretwatch`` costs only what is used: the settings machinery (pydantic,
pydantic-settings) is loaded when ``watch_settings``, ``LiveSettings`` or ``SecretsDir`` is
first used; httpx only by the parts that make HTTP requests. Each case runs in a fresh
interpreter, since this process imported everything long ago."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

CANARY = "CANARY-import-5d1e"
HEAVY = ("pydantic", "pydantic_core", "pydantic_settings", "httpx")

WATCH_THEN_SETTINGS = """
import json, sys

HEAVY = {heavy!r}

import secretwatch

report = {{"after_import": sorted(m for m in HEAVY if m in sys.modules)}}
with secretwatch.watch(sys.argv[1]) as secrets:
    report["watched"] = set(secrets.snapshot) == {{"token"}} and "token" in secrets
report["after_watch"] = sorted(m for m in HEAVY if m in sys.modules)
report["listed"] = sorted(set(secretwatch.__all__) - set(dir(secretwatch)))

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from secretwatch import LiveSettings, SecretsDir, watch_settings
from secretwatch._settings import live, sources


class Model(BaseSettings):
    model_config = SettingsConfigDict(secrets_dir=sys.argv[1])

    token: SecretStr


with secretwatch.watch_settings(Model) as settings:
    report["settings"] = settings.current.token.get_secret_value() == {canary!r}
report["same"] = (
    watch_settings is live.watch_settings
    and LiveSettings is live.LiveSettings
    and SecretsDir is sources.SecretsDir
    and isinstance(settings, secretwatch.LiveSettings)
)
report["resolved"] = all(getattr(secretwatch, name) is not None for name in secretwatch.__all__)
print(json.dumps(report))
"""

FIRST_USE_FROM_THREADS = """
import json, threading

import secretwatch

THREADS = 16
barrier = threading.Barrier(THREADS)
results, failures = [], []


def first_use(name):
    barrier.wait(10)
    try:
        results.append(getattr(secretwatch, name))
    except BaseException as exc:
        failures.append(repr(exc))


names = ["watch_settings", "LiveSettings", "SecretsDir", "watch_settings"] * (THREADS // 4)
threads = [threading.Thread(target=first_use, args=(name,)) for name in names]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(10)
from secretwatch._settings import live, sources

expected = {live.watch_settings, live.LiveSettings, sources.SecretsDir}
real = all(any(result is one for one in expected) for result in results)
print(json.dumps({"failures": failures, "count": len(results), "all_real": real}))
"""


def run_python(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; what it printed last, as JSON (before it, the
    library's log lines may come)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert CANARY not in done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_watch_alone_loads_neither_pydantic_nor_httpx(tmp_path: Path) -> None:
    """``import secretwatch`` and a ``watch()`` of a real volume leave pydantic,
    pydantic-settings and httpx unloaded; ``watch_settings`` then loads and works, and every
    name of ``__all__`` is listed by ``dir()`` and resolves."""
    volume = AtomicVolume(tmp_path / "secret")
    volume.write({"token": CANARY})
    script = WATCH_THEN_SETTINGS.format(heavy=HEAVY, canary=CANARY)
    report = run_python(script, str(volume.path))
    assert report["after_import"] == []
    assert report["watched"] is True
    assert report["after_watch"] == []
    assert report["listed"] == []
    assert report["settings"] is True
    assert report["same"] is True
    assert report["resolved"] is True


def test_first_use_from_many_threads_at_once() -> None:
    """Threads that use the settings names for the first time at the same moment all get
    the real objects, none an error (the import system's module locks serialise the load)."""
    report = run_python(FIRST_USE_FROM_THREADS)
    assert report == {"failures": [], "count": 16, "all_real": True}
