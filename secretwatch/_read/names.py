"""Names shown safely: a key or path with its unprintable characters escaped.

A name below a volume may hold anything a file name can (a newline, an escape sequence,
bytes that are not UTF-8). Messages and ``secretwatch show`` print it through
:func:`escaped`, so a name can neither draw on a terminal nor pass for another one.
"""

from __future__ import annotations

__all__ = ["escaped"]

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def escaped(text: str, *, backslash: bool = True) -> str:
    """``text`` with every character that is not printable escaped as bash's ``$'...'``
    and Python's bytes literals read it: ``\\n``, ``\\r``, ``\\t``, else ``\\xHH`` for
    each of its UTF-8 bytes (U+0085 is ``\\xc2\\x85``), and a byte that is not UTF-8 (a
    lone surrogate from ``os.fsdecode``) as itself (``\\xff``); with ``backslash``, every
    backslash doubled. The result is printable, and reads back as the name's bytes: two
    names never show alike, and ``rm $'...'`` of what is shown removes that file."""
    if text.isprintable() and not (backslash and "\\" in text):
        return text
    return "".join(
        char if char.isprintable() and not (backslash and char == "\\") else _escape(char)
        for char in text
    )


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    try:
        data = char.encode("utf-8", "surrogateescape")  # a byte that was not UTF-8: itself
    except UnicodeEncodeError:  # a lone surrogate that came from no file name
        return f"\\u{ord(char):04x}"
    return "".join(f"\\x{byte:02x}" for byte in data)
