"""Turning one consistent version's bytes into a validated candidate snapshot."""

from __future__ import annotations

import copy
from collections.abc import Callable

from secretwatch._errors import (
    SecretWatchError,
    ValidationError,
    describe,
    passed_on,
    safe_errors,
)
from secretwatch._read.decoders import Decoders
from secretwatch._read.snapshot import Snapshot

__all__ = ["build_snapshot"]

Validator = Callable[[Snapshot], object]


def build_snapshot(
    files: dict[str, bytes],
    *,
    version: int,
    path: str,
    decoders: Decoders,
    validate: Validator | None,
) -> Snapshot:
    """Decode every key and validate the result.

    Raises:
        DecodeError: a key's value could not be decoded.
        ValidationError: ``validate`` raised or returned ``False``. A ``SecretWatchError``
            it raises is passed on with its message, prefixed with the path (and key) when
            it names neither; any other exception is
            reported by type only (a pydantic error by field and message) and not chained,
            since messages of parsers quote their input. Any exception means a rejection,
            ``SystemExit`` included, except a ``KeyboardInterrupt`` on the main thread (a
            Ctrl-C), which is raised again, new.
    """
    values = decoders.decode_all(files, path=path)
    candidate = Snapshot(values, version=version, path=path, raw=files)
    if validate is None:
        return candidate
    failure: BaseException | None = None
    try:
        verdict = validate(candidate)
    except SecretWatchError as exc:  # the validator's own message, meant to be read
        error = copy.copy(exc)  # the validator's instance may be raised again, elsewhere
        error.path = exc.path or path
        if error.path not in error.message:  # say where, as every other error does
            where = f"key {error.key!r} in {error.path}" if error.key else error.path
            error.args = (f"{where}: {error.message}", *error.args[1:])
        raise error from None
    except BaseException as exc:  # sys.exit() in a validator rejects too
        failure = exc
    if failure is not None:  # raised outside the handler: it is not the error's context
        if passed_on(failure):
            raise KeyboardInterrupt
        message = f"{path} version rejected by validate: {describe(failure)}"
        raise ValidationError(message, path=path, errors=safe_errors(failure))
    if verdict is False:
        raise ValidationError(f"{path} version rejected by validate (it returned False)", path=path)
    return candidate
