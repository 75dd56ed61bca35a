"""pytest plugin (entry point ``pytest11``): the ``secret_volume`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretwatch.testing._volume import AtomicVolume


@pytest.fixture
def secret_volume(tmp_path: Path) -> AtomicVolume:
    """An :class:`~secretwatch.testing.AtomicVolume` at ``tmp_path / "secret"``, not yet written.

    Write it with ``secret_volume.write({...})``; watch ``secret_volume.path``.
    """
    return AtomicVolume(tmp_path / "secret")
