"""Decoders turn a key's bytes into the value a snapshot holds.

A watcher's ``decoders`` maps a key or a glob pattern to a decoder: one of the names
``"text"`` (UTF-8, the default), ``"bytes"``, ``"json"``, ``"base64"``, or any callable
``bytes -> value``. An exact key wins over patterns (also a key that contains glob
characters); patterns are tried in the order given (``fnmatch`` rules, where ``*`` also
matches ``/``).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

from secretwatch._errors import DecodeError, passed_on
from secretwatch._read.values import RedactedBytes, RedactedStr, freeze_json

__all__ = ["DecoderName", "DecoderSpec", "Decoders"]

DecoderName: TypeAlias = Literal["text", "bytes", "json", "base64"]
"""The names of the built-in decoders."""

DecoderSpec: TypeAlias = DecoderName | Callable[[bytes], Any]
"""A built-in decoder's name, or a callable that turns a key's bytes into its value."""


class _Failure(Exception):
    """A built-in decoder's reason for refusing a value; its message never holds the value."""


def _text(data: bytes) -> RedactedStr:
    try:
        return RedactedStr(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Failure("is not valid UTF-8 text; declare it 'bytes' or 'base64'") from None


def _bytes(data: bytes) -> RedactedBytes:
    return RedactedBytes(data)


def _json(data: bytes) -> Any:
    try:
        return freeze_json(json.loads(data))
    except UnicodeDecodeError:
        raise _Failure("is not valid UTF-8, so not JSON") from None
    except json.JSONDecodeError as exc:
        # lineno and colno locate the problem without quoting the document
        raise _Failure(f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None


def _base64(data: bytes) -> RedactedBytes:
    try:
        return RedactedBytes(base64.b64decode(b"".join(data.split()), validate=True))
    except (binascii.Error, ValueError):
        raise _Failure("is not valid base64") from None


_BUILT_IN: dict[str, Callable[[bytes], Any]] = {
    "text": _text,
    "bytes": _bytes,
    "json": _json,
    "base64": _base64,
}


def _resolve(spec: DecoderSpec) -> Callable[[bytes], Any]:
    if callable(spec):
        return spec
    try:
        return _BUILT_IN[spec]
    except (KeyError, TypeError):
        names = ", ".join(repr(name) for name in _BUILT_IN)
        raise ValueError(f"unknown decoder {spec!r}: use one of {names} or a callable") from None


def _describe(decoder: Callable[[bytes], Any]) -> str:
    for name, built_in in _BUILT_IN.items():
        if decoder is built_in:
            return name
    return getattr(decoder, "__qualname__", None) or type(decoder).__name__


class Decoders:
    """The decoder configuration of one watcher: which decoder each key gets."""

    __slots__ = ("_exact", "_patterns")

    def __init__(self, spec: Mapping[str, DecoderSpec] | None = None):
        exact: dict[str, Callable[[bytes], Any]] = {}
        patterns: list[tuple[str, Callable[[bytes], Any]]] = []
        for key, decoder in (spec or {}).items():
            exact[key] = _resolve(decoder)  # a key named 'weird[1].json' matches itself
            if any(char in key for char in "*?["):
                patterns.append((key, exact[key]))
        self._exact = exact
        self._patterns = tuple(patterns)

    def for_key(self, key: str) -> Callable[[bytes], Any]:
        """Return the decoder for ``key``: its exact entry, the first matching pattern, or text."""
        decoder = self._exact.get(key)
        if decoder is not None:
            return decoder
        for pattern, decoder in self._patterns:
            if fnmatch.fnmatchcase(key, pattern):
                return decoder
        return _text

    def decode(self, key: str, data: bytes, *, path: str) -> Any:
        """Decode one key's bytes, raising :class:`DecodeError` that names path and key only."""
        return self.decode_all({key: data}, path=path)[key]

    def decode_all(self, files: Mapping[str, bytes], *, path: str) -> dict[str, Any]:
        """Decode every key (one loop: this runs for every key of every version).

        Raises:
            DecodeError: a key's bytes could not be decoded; it names path and key only. A
                decoder's exception of any kind (``SystemExit`` too) is its failure, but a
                ``KeyboardInterrupt`` on the main thread (a Ctrl-C) is raised again, new.
        """
        exact, patterns = self._exact, self._patterns
        values: dict[str, Any] = {}
        for key, data in files.items():
            decoder = exact.get(key)
            if decoder is None:
                decoder = self.for_key(key) if patterns else _text
            try:
                values[key] = decoder(data)
                continue
            except BaseException as exc:  # sys.exit() in a decoder is its failure too
                error = None if passed_on(exc) else _decode_error(path, key, decoder, exc)
            # outside the handler: the decoder's exception may quote the value
            raise KeyboardInterrupt if error is None else error
        return values


def _decode_error(
    path: str, key: str, decoder: Callable[[bytes], Any], exc: BaseException
) -> DecodeError:
    if isinstance(exc, _Failure):
        message = f"key {key!r} in {path} {exc}"
    else:  # a foreign decoder's message may quote the value: report only its type
        message = (
            f"key {key!r} in {path} could not be decoded by {_describe(decoder)}: "
            f"{type(exc).__name__} (message withheld: it may contain the value)"
        )
    return DecodeError(message, path=path, key=key)
