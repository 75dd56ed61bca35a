"""MkDocs hook: Sphinx roles in docstrings (``:class:`~a.B```) shown as plain code (``B``).

The package's docstrings use Sphinx roles, which IDEs and ``help()`` show as they are;
mkdocstrings renders them as text followed by code. This drops the role, and for a
``~``-prefixed target keeps the last name, as Sphinx would.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|attr|func|mod|exc|data|obj):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite the roles in the page's HTML."""
    return _ROLE.sub(_plain, html)
