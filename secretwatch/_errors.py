"""The errors secretwatch raises.

Every error is a :class:`SecretWatchError`; the tree is small on purpose::

    SecretWatchError            a version of the volume could not be used
     ├── VolumeNotFoundError    the watched path does not exist
     ├── ReadError              a file could not be read consistently
     │    ├── SymlinkEscapeError    a link points outside the volume
     │    └── TooLargeError         a file is larger than ``max_bytes``
     ├── DecodeError            a value could not be decoded
     └── ValidationError        ``validate`` rejected the version

Messages name the volume path and the key, never a value: they are safe to log. Errors
that come from decoding never chain the original exception, because parsers echo their
input in their messages (``int("hunter2")`` says ``'hunter2'``).

Misuse of the API (starting a stopped watcher, bad arguments) raises the usual built-in
exceptions (``RuntimeError``, ``ValueError``, ``TypeError``), not these.

User code (decoders, ``validate``, settings models and their validators, callbacks) may
raise anything, ``BaseException`` included (``SystemExit``, ``KeyboardInterrupt``,
``GeneratorExit``, one of its own): that is the code's failure, and is handled as an
``Exception`` is (a rejected version; a logged callback failure). The one exception is a
``KeyboardInterrupt`` on the main thread, where Python delivers a Ctrl-C (:func:`passed_on`):
it is raised again, as a new ``KeyboardInterrupt``, from the entry point (:func:`outward`).
"""

from __future__ import annotations

import functools
import os
import threading
import traceback
import typing
from collections.abc import Collection
from decimal import Decimal
from typing import Any, TypeVar

__all__ = [
    "DecodeError",
    "ReadError",
    "SecretWatchError",
    "SymlinkEscapeError",
    "TooLargeError",
    "ValidationError",
    "VolumeNotFoundError",
    "describe",
    "frames",
    "outward",
    "passed_on",
    "safe_errors",
    "scrub",
]

E = TypeVar("E", bound=BaseException)


class SecretWatchError(Exception):
    """Root of every error secretwatch raises about a volume.

    Attributes:
        path: the watched path (the volume directory or file).
        key: the key the error is about, or ``None`` when it concerns the whole volume.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] = "", key: str | None = None):
        super().__init__(message)
        self.path = os.fspath(path)
        self.key = key

    @property
    def message(self) -> str:
        """The message, which names the path and key and never a value."""
        return str(self.args[0])


class VolumeNotFoundError(SecretWatchError):
    """The watched path does not exist (not mounted yet, or deleted)."""


class ReadError(SecretWatchError):
    """A file of the volume could not be read, or the volume kept changing while read.

    Attributes:
        transient: ``True`` when the volume was caught mid-write (a writer was still
            working); the writer's next step brings another event, so a watcher waits
            for it instead of reporting the version as rejected.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] = "",
        key: str | None = None,
        transient: bool = False,
    ):
        super().__init__(message, path=path, key=key)
        self.transient = transient


class SymlinkEscapeError(ReadError):
    """A symbolic link in the volume points outside it; it is never followed."""


class TooLargeError(ReadError):
    """A file is larger than the watcher's ``max_bytes``."""


class DecodeError(SecretWatchError):
    """A value could not be decoded with the decoder configured for its key."""


class ValidationError(SecretWatchError):
    """The ``validate`` callable, or a settings model, rejected a new version.

    Raise it from ``validate`` to reject with a message of your own (keep values out of
    it): ``raise secretwatch.ValidationError("tls.crt does not match tls.key")``. Any other
    exception rejects too, but only its type is reported, since messages of parsers and
    conversions quote their input. A pydantic error is reported by field, message and type,
    and :meth:`errors` lists its details (without the input values).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] = "",
        key: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message, path=path, key=key)
        self._errors = list(errors or ())

    def errors(self) -> list[dict[str, Any]]:
        """The pydantic error details behind this error: ``loc``, ``msg`` and ``type`` each.

        Like pydantic's ``ValidationError.errors()``, without ``input``, ``ctx`` and
        ``url``. A message that may quote the value (one written by a validator, or one
        pydantic builds from the input, as for a bad UUID) is withheld. ``loc`` names
        fields and list indexes, and the keys of JSON objects (they are not withheld).
        Empty when the rejection did not come from pydantic.
        """
        return [dict(detail) for detail in self._errors]


# pydantic-core renders its own messages from a template and a context. The context of
# these types comes from the input (a tag, a character, a foreign exception's message) or
# is a validator's own message: their messages are withheld. The others' contexts come
# from the schema (a limit, a pattern, the expected values) or from a parser's fixed
# description of what is wrong (where in a JSON document, which part of a date).
_INPUT_IN_MESSAGE = frozenset(
    {
        "assertion_error",
        "bytes_invalid_encoding",
        "datetime_object_invalid",
        "get_attribute_error",
        "iteration_error",
        "mapping_type",
        "no_such_attribute",
        "timezone_offset",
        "union_tag_invalid",
        "uuid_parsing",
        "value_error",
    }
)


@functools.cache
def _known_types() -> frozenset[str]:
    """pydantic-core's error types whose messages never quote the input. Imported here, not
    with this module: only a pydantic error comes here, and then pydantic-core is loaded."""
    from pydantic_core.core_schema import ErrorType  # noqa: PLC0415

    return frozenset(typing.get_args(ErrorType)) - _INPUT_IN_MESSAGE


# types whose context holds text from the schema (a pattern, the expected values, a class
# name). Other types' contexts are numbers (limits), or a parser's description of what is
# wrong, which is kept only when it does not quote the input: a validator may raise any
# type with a context made from the input
_SCHEMA_TEXT = frozenset(
    {
        "dataclass_exact_type",
        "dataclass_type",
        "enum",
        "is_instance_of",
        "is_subclass_of",
        "literal_error",
        "model_type",
        "string_pattern_mismatch",
        "union_tag_not_found",
        "url_scheme",
    }
)
_WITHHELD = "(message withheld: it may contain the value)"


def _own_message(detail: Any) -> bool:
    """Whether a detail's message is pydantic's own rendering, from nothing of the input.

    A validator can raise any type with a message or context of its own: the message is
    kept only when pydantic-core renders exactly it from the type and a context of limits
    (or of schema text, for the types that have it). The input's length counts as input.
    """
    from pydantic_core import PydanticKnownError  # noqa: PLC0415  # see _known_types

    kind, context, message = detail["type"], detail.get("ctx") or {}, detail["msg"]
    if kind not in _known_types() or "actual_length" in context:
        return False
    try:
        if PydanticKnownError(kind, context or None).message() != message:
            return False  # a message of the validator's own
    except Exception:  # a context that does not fit the type: not pydantic's own
        return False
    numbers = all(
        isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        for value in context.values()
    )
    if numbers or kind in _SCHEMA_TEXT:
        return True
    # a parser's description of the problem ("relative URL without a base", "EOF while
    # parsing an object at line 1 column 9"), unless it quotes the input
    value = detail.get("input")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return isinstance(value, str) and value.strip() not in message


def safe_errors(
    exc: BaseException, names: Collection[str] | None = None
) -> list[dict[str, Any]] | None:
    """The details of a pydantic validation error without values, or ``None`` for others.

    Each detail keeps ``loc`` and ``type``, and ``msg`` when it is pydantic's own message
    for a type whose message never quotes the input; ``input``, ``ctx`` and ``url`` go.
    With ``names`` (the field names and aliases of the model), a ``loc`` element that is
    none of them nor a list index (a key of a JSON object, which may be secret) is ``*``.
    """
    errors = getattr(exc, "errors", None)
    if not (type(exc).__module__.startswith("pydantic") and callable(errors)):
        return None
    details = errors(include_url=False, include_context=True)  # input and context: to check
    return [
        {
            "loc": tuple(
                part if names is None or isinstance(part, int) or part in names else "*"
                for part in detail["loc"]
            ),
            "msg": detail["msg"] if _own_message(detail) else _WITHHELD,
            "type": detail["type"],
        }
        for detail in details
    ]


def frames(exc: BaseException) -> list[str]:
    """Where ``exc`` was raised, as ``file:line in function`` lines: no message, no locals.

    For logging an exception from code that holds values (a callback, a validator): a
    traceback renderer may show the frames' locals, and messages may quote values.
    """
    return [
        f"{frame.filename}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    ]


def scrub(error: E) -> E:
    """``error`` without its traceback and without the exceptions it was raised during.

    Errors are raised inside ``except`` blocks whose exceptions (and the frames' locals in
    tracebacks) hold the volume's bytes: a ``JSONDecodeError`` keeps the whole document.
    ``raise ... from None`` only hides ``__context__`` from the printed traceback; an error
    that is kept (``last_error``) or handed out must not carry it at all.
    """
    error.__traceback__ = None
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    return error


def describe(exc: BaseException, names: Collection[str] | None = None) -> str:
    """A one-line description of a foreign exception that is safe to log.

    pydantic's validation errors are described by location, message and type, without the
    input they quote (see :func:`safe_errors`); pydantic-settings' errors by their message,
    which names the field and the source, and the type of their cause. Other exceptions by
    their type only: ``int("hunter2")`` says ``'hunter2'`` in its message.
    """
    details = safe_errors(exc, names)
    if details is not None:
        parts = [
            f"{'.'.join(str(p) for p in detail['loc']) or '(root)'}: {detail['msg']}"
            f" [type={detail['type']}]"
            for detail in details
        ]
        return f"{type(exc).__name__}: " + "; ".join(parts)
    if type(exc).__module__.startswith("pydantic_settings"):
        cause = exc.__cause__
        return f"{exc}" + (f" ({type(cause).__name__})" if cause is not None else "")
    return f"{type(exc).__name__} {_WITHHELD}"


def passed_on(exc: BaseException) -> bool:
    """Whether ``exc``, raised by user code, is passed on rather than taken as its failure.

    Only a ``KeyboardInterrupt`` on the main thread: Python delivers a Ctrl-C there, in
    whatever code runs, and it must still interrupt :meth:`start` or :meth:`reload`. On any
    other thread one can only come from the code itself (as ``SystemExit`` always does).
    """
    return isinstance(exc, KeyboardInterrupt) and (
        threading.current_thread() is threading.main_thread()
    )


def outward(exc: BaseException) -> BaseException:
    """What a public entry point (``start``, ``reload``) raises for ``exc``: ``exc`` without
    frames below the entry point or chained exceptions (:func:`scrub`); for a
    ``KeyboardInterrupt``, a new one, since the one caught may be user code's, with values
    in its arguments. Raise it outside the ``except`` block, or it chains what it caught, and
    ``del`` the caught one first, or it stays in the raising frame's locals.
    """
    scrub(exc)  # the one caught too: a frame that still holds it reaches no value through it
    return KeyboardInterrupt() if isinstance(exc, KeyboardInterrupt) else exc
