"""The code blocks of the README and of every documentation page, found and run.

A block runs as written, with the paths and addresses the pages use swapped for real
ones: a kubelet-style volume in ``tmp_path`` for ``/etc/...``, a webhook receiver on
127.0.0.1 for ``http://127.0.0.1:8080/-/reload``, a stand-in server for ``my-server``,
:class:`~secretwatch.testing.FakeAICore` for the AI Core API. A block that can't run
here says why, in a comment just before it:

- ``<!-- not-run: REASON -->`` (installs, a container engine, a 10-minute run);
- ``<!-- run-by: tests/test_x.py -->``: an example's command, which that test runs as a
  process;
- ``<!-- test-command -->`` and ``<!-- demo-command -->``: ``.ci/run`` runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_BLOCK = re.compile(
    r"^(?:<!-- (?P<marker>[^\n]*?) -->\n)?```(?P<lang>python|sh|bash|console)\n(?P<code>.*?)^```$",
    flags=re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    """One fenced block at the left margin of a page (indented ones are included files)."""

    page: Path
    line: int
    lang: str
    code: str
    marker: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        """A shell block's commands: continuation lines joined, comments and blanks left out."""
        joined = re.sub(r"\\\n\s*", " ", self.code)
        return [
            line.strip()
            for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]


def blocks(page: Path) -> list[Block]:
    """The page's Python and shell blocks, in order."""
    text = page.read_text()
    return [
        Block(
            page=page,
            line=text.count("\n", 0, match.start("code")),
            lang="sh" if match["lang"] in ("bash", "console") else match["lang"],
            code=match["code"],
            marker=match["marker"],
        )
        for match in _BLOCK.finditer(text)
    ]


def all_blocks(lang: str) -> list[Block]:
    """Every block of ``lang`` on every page."""
    return [block for page in PAGES for block in blocks(page) if block.lang == lang]
