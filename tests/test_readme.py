"""The README's examples run as written (against a real volume in place of /etc)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from secretwatch.aicore import Scope, SecretsAPI
from secretwatch.testing import AtomicVolume, FakeAICore

from .conftest import TIMEOUT

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
EXAMPLE_PATH = "/etc/my-generic-secret"
SETTINGS_PATH = "/etc/db-secret"


def run(block: str, volume: AtomicVolume) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    settings = AtomicVolume(volume.path.parent / "db-secret")
    settings.write({"password": "p1"})
    block = block.replace(EXAMPLE_PATH, str(volume.path))
    block = block.replace(SETTINGS_PATH, str(settings.path))
    exec(compile(block, str(README), "exec", dont_inherit=True), namespace)
    return namespace


@pytest.fixture
def example_volume(tmp_path: Path) -> AtomicVolume:
    volume = AtomicVolume(tmp_path / "my-generic-secret")
    volume.write({"some-credential": "c1", "other": "o1"})
    return volume


def test_readme_has_examples() -> None:
    """The README shows several Python examples, and they use the documented path."""
    assert len(BLOCKS) >= 5
    assert sum(EXAMPLE_PATH in block for block in BLOCKS) >= 3
    assert "watch_settings" in BLOCKS[0]  # the model-based usage comes first


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(
    index: int,
    example_volume: AtomicVolume,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each example runs; examples that define functions are called as the text says."""
    if "SecretsAPI" in BLOCKS[index]:  # against the stand-in API, with a secret to rotate
        with FakeAICore(resource_groups=("default", "team-b")) as api:
            monkeypatch.setenv("AICORE_SERVICE_KEY", json.dumps(api.service_key()))
            with SecretsAPI.from_service_key(api.service_key()) as client:
                client.create("shared-key", data={"token": "old"}, scope=Scope.tenant_wide())
            run(BLOCKS[index], example_volume)
            assert api.data("shared-key", scope="*") == {"token": b"new value"}
        assert "['default', 'team-b']" in capsys.readouterr().out
        return
    namespace = run(BLOCKS[index], example_volume)
    if "test_client_follows_rotation" in namespace:
        namespace["test_client_follows_rotation"](AtomicVolume(tmp_path / "fixture"))
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
