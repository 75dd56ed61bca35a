"""Secret values that behave like ``str`` and ``bytes`` but never show themselves in a repr.

A decoded value is handed to code that logs, raises and prints: a ``%r`` in a log call, a
traceback that shows locals, a debugger. These subclasses keep every behaviour of ``str``
and ``bytes`` (comparison, hashing, slicing, passing to any API) and change only ``repr``.
``str(value)`` and ``format`` still give the value: that is how it is used.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["FrozenDict", "RedactedBytes", "RedactedStr", "freeze_json"]

_MASK = "**********"


class RedactedStr(str):
    """A ``str`` whose ``repr`` is ``RedactedStr('**********')``.

    Examples:
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

    Examples:
        >>> key = RedactedBytes(b"\\x00secret")
        >>> key[1:]
        b'secret'
        >>> key
        RedactedBytes(b'**********')
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RedactedBytes(b'{_MASK}')"


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses changes: decoded JSON objects, shared by every reader.

    It is still a ``dict`` (``isinstance``, ``json.dumps`` and pydantic accept it); copy it
    with ``dict(value)`` to get one you can change.
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a decoded JSON value is read-only: copy it with dict(value) to change it")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (type(self), (dict(self),))  # pickle and deepcopy without __setitem__


def freeze_json(value: object) -> object:
    """Make a decoded JSON document read-only and its strings :class:`RedactedStr`.

    Objects become :class:`FrozenDict` (keys stay plain ``str``), arrays become tuples.
    """
    if isinstance(value, str):
        return RedactedStr(value)
    if isinstance(value, dict):
        return FrozenDict({k: freeze_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze_json(v) for v in value)
    return value
