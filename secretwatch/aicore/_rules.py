"""The API's rules for names, data keys, values and labels, checked before any request."""

from __future__ import annotations

import re
from collections.abc import Mapping

from secretwatch.aicore._errors import InvalidSecretError

__all__ = ["LABEL_PREFIX", "check_data", "check_labels", "check_name", "encode_value"]

LABEL_PREFIX = "ext.ai.sap.com/"
_NAME = re.compile(r"[a-z0-9\-.]{1,252}")
_LABEL_KEY = re.compile(r"ext\.ai\.sap\.com/(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]){1,48}")
_LABEL_KEY_MAX = 63
_LABEL_VALUE_MAX = 5000
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")  # a Kubernetes Secret's key: a file name
_DATA_MAX = 1024 * 1024  # a Kubernetes Secret holds at most 1 MiB
# labels the PATCH endpoint can't change
_FIXED_LABELS = frozenset(
    {"ext.ai.sap.com/document-grounding", "ext.ai.sap.com/documentRepositoryType"}
)


def check_name(name: str) -> None:
    """A secret name: 1-252 characters of ``a-z``, ``0-9``, ``-`` and ``.``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidSecretError(
            "a secret name is 1 to 252 characters of lower-case letters, digits, '-' and '.'"
        )
    if name in (".", ".."):  # the pattern allows them, but in a URL's path they mean a move
        raise InvalidSecretError(f"a secret can't be named {name!r}: its URL would be another")


def encode_value(key: str, value: bytes | str) -> bytes:
    """A data value as bytes (text as UTF-8)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise InvalidSecretError(f"the value of data key {key!r} must be bytes or str")


def check_data(data: Mapping[str, bytes | str]) -> dict[str, bytes]:
    """Data keys that can be file names, and at most 1 MiB of values; the values as bytes."""
    values: dict[str, bytes] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not _DATA_KEY.fullmatch(key) or key in {".", ".."}:
            raise InvalidSecretError(
                f"data key {key!r} can't be a file name in the mounted volume: use letters, "
                "digits, '-', '_' and '.' (not '.' or '..')"
            )
        if key.startswith(".."):
            raise InvalidSecretError(f"data key {key!r} starts with '..', which the kubelet uses")
        values[key] = encode_value(key, value)
    size = sum(len(value) for value in values.values())
    if size > _DATA_MAX:
        raise InvalidSecretError(f"the data holds {size} bytes; a secret holds at most 1 MiB")
    return values


def check_labels(labels: Mapping[str, str], *, patch: bool) -> None:
    """Label keys under ``ext.ai.sap.com/``, of the API's pattern and lengths."""
    for key, value in labels.items():
        if not isinstance(key, str) or not key.startswith(LABEL_PREFIX):
            raise InvalidSecretError(f"label {key!r}: only {LABEL_PREFIX} labels can be set")
        if len(key) > _LABEL_KEY_MAX or not _LABEL_KEY.fullmatch(key):
            raise InvalidSecretError(
                f"label {key!r} breaks the label key rule (at most {_LABEL_KEY_MAX} characters, "
                "letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"
            )
        if patch and key in _FIXED_LABELS:
            raise InvalidSecretError(f"label {key!r} can't be changed by an update")
        if not isinstance(value, str) or len(value) > _LABEL_VALUE_MAX:
            raise InvalidSecretError(
                f"label {key!r}: the value must be text of at most {_LABEL_VALUE_MAX} characters"
            )
