"""The public API is what __all__ says, and every public name is documented."""

from __future__ import annotations

import inspect

import pytest

import secretwatch
import secretwatch.testing


def public_members(module: object) -> set[str]:
    """Public names of a module, as ``dir()`` lists them (names imported on first use
    included): no submodules, no pytest rewriting helpers ('@')."""
    return {
        name
        for name in dir(module)
        if not name.startswith(("_", "@")) and not inspect.ismodule(getattr(module, name))
    } - {"annotations"}


@pytest.mark.smoke
def test_all_lists_exactly_the_public_names() -> None:
    """Nothing public is missing from __all__, nothing in __all__ is missing."""
    assert set(secretwatch.__all__) - {"__version__"} == public_members(secretwatch)
    assert set(secretwatch.testing.__all__) == public_members(secretwatch.testing)


def test_every_public_name_has_a_docstring() -> None:
    """Classes, functions, and the public methods and properties of classes."""
    undocumented = []
    for module in (secretwatch, secretwatch.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not inspect.getdoc(obj):
                undocumented.append(name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    documentable = callable(member) or isinstance(member, property)
                    if attr.startswith("_") or not documentable:
                        continue
                    if not (member.__doc__ or "").strip():
                        undocumented.append(f"{name}.{attr}")
    assert undocumented == []


@pytest.mark.smoke
def test_version() -> None:
    """The package knows its version."""
    assert secretwatch.__version__.count(".") >= 2
