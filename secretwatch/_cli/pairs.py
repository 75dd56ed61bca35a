"""Values given on the command line (``--set``, ``--set-file``, ``--label``), kept safe.

They are taken out of the arguments before pydantic-settings parses them (its list
parsing splits at commas and reads JSON, which would mangle a value, and its errors quote
what they parse): the parser only ever sees ``@0``, ``@1``... (:func:`hide_values`), and
:data:`Pairs` fields get the values back while :func:`hidden_values` is in force.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import NoDecode

from secretwatch._read.names import escaped

__all__ = ["Pairs", "hidden_values", "hide_values", "pairs", "repeated_keys"]

# the values of --set, --set-file and --label, in order; the parser sees "@<index>"
_hidden: ContextVar[tuple[str, ...]] = ContextVar("hidden_values", default=())
_HIDDEN_OPTIONS = ("--set", "--set-file", "--label")


def hide_values(args: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """Replace the values of ``--set``, ``--set-file`` and ``--label`` by ``@<index>``."""
    shown: list[str] = []
    hidden: list[str] = []
    arguments = iter(args)
    for argument in arguments:
        option, equals, inline = argument.partition("=")
        if option in _HIDDEN_OPTIONS:
            value = inline if equals else next(arguments, None)
            if value is None:
                shown.append(argument)
                continue
            shown += [option, f"@{len(hidden)}"]
            hidden.append(value)
        else:
            shown.append(argument)
    return shown, tuple(hidden)


def _restore(value: Any) -> Any:
    """``"@0,@1"`` (as the parser passes a list) -> the hidden values."""
    hidden = _hidden.get()
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list):
        return value
    restored = []
    for part in parts:
        index = part[1:] if isinstance(part, str) and part.startswith("@") else ""
        if not (index.isdigit() and int(index) < len(hidden)):  # "@0" from the environment
            raise ValueError("give KEY=VALUE on the command line")
        restored.append(hidden[int(index)])
    return restored


Pairs = Annotated[list[str], NoDecode, BeforeValidator(_restore)]


def pairs(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a mapping (a later key would win: see :func:`repeated_keys`)."""
    return dict(pair.partition("=")[::2] for pair in pairs)


def repeated_keys(sets: list[str], set_files: list[str], labels: list[str]) -> None:
    """Refuse a data key given twice (by ``--set`` and ``--set-file`` together, too) or a
    label given twice: which value was meant can't be known. Names the key, never a value.

    Raises:
        ValueError: the first key given twice.
    """
    for options, pairs in (("--set and --set-file", [*sets, *set_files]), ("--label", labels)):
        seen: set[str] = set()
        for pair in pairs:
            key = pair.partition("=")[0]
            if key in seen:
                raise ValueError(f"{options} give the key {escaped(key)!r} more than once")
            seen.add(key)


@contextlib.contextmanager
def hidden_values(hidden: tuple[str, ...]) -> Iterator[None]:
    """Make ``hidden`` the values that ``@<index>`` stands for, while parsing."""
    token = _hidden.set(hidden)
    try:
        yield
    finally:
        _hidden.reset(token)
