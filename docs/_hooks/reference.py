"""MkDocs hook: the sidecar reference page's tables and help, made from the CLI's models."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Put the generated reference where the page has the marker."""
    if MARKER not in markdown:
        return markdown
    from secretwatch._cli.reference import reference

    return markdown.replace(MARKER, reference())
