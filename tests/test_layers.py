"""The package is layered one way: each wing imports only the wings below it and the
leaves, read from the source (ast), lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "secretwatch"

# what each part of the package must never import
FORBIDDEN = {
    "_read": {"_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
    "_watch": {"_settings", "_cli", "aicore", "testing", "integrations"},
    "_settings": {"_cli", "aicore", "testing", "integrations"},
    "aicore": {"_read", "_watch", "_settings", "_cli", "testing", "integrations"},
    "testing": {"_read", "_watch", "_settings", "_cli", "aicore", "integrations"},
    "integrations": {"_cli"},
    # the leaves: modules at the top that every wing may import
    "_errors": {"_read", "_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
    "_log": {"_read", "_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
    "_logging": {"_read", "_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
    "_backoff": {"_read", "_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
    "_memfd": {"_read", "_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
    "_http": {"_read", "_watch", "_settings", "_cli", "aicore", "testing", "integrations"},
}


def imported(path: Path) -> set[str]:
    """The parts of ``secretwatch`` (its first name after ``secretwatch.``) that the module
    at ``path`` imports, wherever in the module the import stands. The package imports
    itself by absolute names only, which keeps this reading simple."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "secretwatch" and len(parts) > 1:
                found.add(parts[1])
    return found


def part_of(path: Path) -> str:
    """``_read``, ``aicore``... for a module in a package; the module's name for a leaf."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_import_runs_back_up(path: Path) -> None:
    """A module imports no part of the package that its own part must not import."""
    forbidden = FORBIDDEN.get(part_of(path), set())
    assert imported(path) & forbidden == set()


def test_the_rules_see_imports() -> None:
    """The reader finds imports at the top and inside functions (so the rules can fail)."""
    assert {"_read", "_watch", "_settings", "_errors"} <= imported(
        PACKAGE / "_settings" / "live.py"
    )
    assert "_cli" in imported(PACKAGE / "__main__.py")
    assert "aicore" in imported(PACKAGE / "_cli" / "aicore.py")  # inside a function
    assert set(FORBIDDEN) - {"integrations"} <= {part_of(path) for path in MODULES}
