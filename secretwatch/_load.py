"""Turning one consistent version's bytes into a validated candidate snapshot."""

from __future__ import annotations

from collections.abc import Callable

from secretwatch._decoders import Decoders
from secretwatch._errors import SecretWatchError, ValidationError, describe
from secretwatch._snapshot import Snapshot

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
        ValidationError: ``validate`` raised (its message is kept; a pydantic error is
            described by field and message only, and never chained: it quotes its input).
    """
    values = {key: decoders.decode(key, data, path=path) for key, data in files.items()}
    candidate = Snapshot(values, version=version, path=path, raw=files)
    if validate is None:
        return candidate
    try:
        validate(candidate)
    except SecretWatchError:
        raise
    except Exception as exc:
        error = ValidationError(f"{path} version rejected by validate: {describe(exc)}", path=path)
        raise error from (None if type(exc).__module__.startswith("pydantic") else exc)
    return candidate
