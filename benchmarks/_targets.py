"""The targets a benchmark checks its figures against."""

from __future__ import annotations

from typing import Any

Target = tuple[str, str, bool]
"""What is aimed at, what was measured, whether it was met."""


def row(rows: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The row measuring ``what`` (``what`` may end with ``*``: the first row it begins)."""
    for found in rows:
        if found["what"] == what or (what.endswith("*") and found["what"].startswith(what[:-1])):
            return found
    raise LookupError(f"no row {what!r}")
