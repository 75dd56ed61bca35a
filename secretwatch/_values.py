"""Secret values that behave like ``str`` and ``bytes`` but never show themselves in a repr.

A decoded value is handed to code that logs, raises and prints: a ``%r`` in a log call, a
traceback that shows locals, a debugger. These subclasses keep every behaviour of ``str``
and ``bytes`` (comparison, hashing, slicing, passing to any API) and change only ``repr``.
``str(value)`` and ``format`` still give the value: that is how it is used.
"""

from __future__ import annotations

__all__ = ["RedactedBytes", "RedactedStr"]

_MASK = "**********"


class RedactedStr(str):
    """A ``str`` whose ``repr`` is ``RedactedStr('**********')``.

    Example:
        >>> password = RedactedStr("hunter2")
        >>> password == "hunter2"
        True
        >>> password
        RedactedStr('**********')
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RedactedStr('{_MASK}')"


class RedactedBytes(bytes):
    """A ``bytes`` whose ``repr`` is ``RedactedBytes(b'**********')``.

    Example:
        >>> key = RedactedBytes(b"\\x00secret")
        >>> key[1:]
        b'secret'
        >>> key
        RedactedBytes(b'**********')
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RedactedBytes(b'{_MASK}')"


def redact_json(value: object) -> object:
    """Wrap every string in a decoded JSON document in :class:`RedactedStr` (keys stay plain)."""
    if isinstance(value, str):
        return RedactedStr(value)
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value
