"""The tests exercise the secretwatch they mean to: this source tree, or, in CI's run
against the wheel, the copy installed from it."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

import secretwatch

INSTALLED_IN = "TEST_INSTALLED_SECRETWATCH_IN"  # set by .ci/run to the wheel's environment


@pytest.mark.smoke
def test_secretwatch_and_its_plugin_come_from_the_copy_under_test(
    pytestconfig: pytest.Config,
) -> None:
    """Under ``TEST_INSTALLED_SECRETWATCH_IN`` the package and the pytest plugin (loaded by its
    pytest11 entry point) are the ones in that environment's site-packages; otherwise they
    are this source tree's."""
    package = Path(secretwatch.__file__).resolve().parent
    plugin = pytestconfig.pluginmanager.get_plugin("secretwatch")
    assert plugin is not None, "the pytest11 entry point 'secretwatch' was not loaded"
    assert Path(plugin.__file__).resolve() == package / "testing" / "_plugin.py"
    if environment := os.environ.get(INSTALLED_IN):
        assert package == Path(sysconfig.get_path("purelib")).resolve() / "secretwatch"
        assert package.is_relative_to(Path(environment).resolve())
    else:
        assert package == Path(__file__).resolve().parent.parent / "secretwatch"
