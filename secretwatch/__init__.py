"""secretwatch: follow rotated secrets in mounted volumes without restarting.

Examples:
    >>> import secretwatch
    >>> with secretwatch.watch("/etc/my-generic-secret") as secrets:  # doctest: +SKIP
    ...     token = secrets["some-credential"]

The settings machinery (``LiveSettings``, ``watch_settings``, ``SecretsDir``) is imported on
first use, with pydantic and pydantic-settings: an application that only watches volumes
never loads them (PEP 562). Type checkers see every name as usual.
"""

import importlib
import typing

from secretwatch._errors import (
    DecodeError,
    ReadError,
    SecretWatchError,
    SymlinkEscapeError,
    TooLargeError,
    ValidationError,
    VolumeNotFoundError,
)
from secretwatch._read.decoders import DecoderName, DecoderSpec
from secretwatch._read.snapshot import Change, Snapshot
from secretwatch._read.values import RedactedBytes, RedactedStr
from secretwatch._watch.dispatch import Subscription
from secretwatch._watch.watcher import SecretWatcher, WatchOptions, watch

if typing.TYPE_CHECKING:
    from secretwatch._settings.live import LiveSettings, watch_settings
    from secretwatch._settings.sources import SecretsDir

    __version__: str

# the names imported on first use, and the module each comes from
_LAZY = {
    "LiveSettings": "secretwatch._settings.live",
    "watch_settings": "secretwatch._settings.live",
    "SecretsDir": "secretwatch._settings.sources",
}

__all__ = [
    "Change",
    "DecodeError",
    "DecoderName",
    "DecoderSpec",
    "LiveSettings",
    "ReadError",
    "RedactedBytes",
    "RedactedStr",
    "SecretWatchError",
    "SecretWatcher",
    "SecretsDir",
    "Snapshot",
    "Subscription",
    "SymlinkEscapeError",
    "TooLargeError",
    "ValidationError",
    "VolumeNotFoundError",
    "WatchOptions",
    "__version__",
    "watch",
    "watch_settings",
]


if not typing.TYPE_CHECKING:  # hidden from type checkers, which would take any name for one

    def __getattr__(name: str) -> object:
        """Import a settings name on its first use (PEP 562); the version, from the
        package's metadata. Threads that ask at once wait on the import system's lock of
        the module, and all get the module once it is whole."""
        if name in _LAZY:
            value = getattr(importlib.import_module(_LAZY[name]), name)
        elif name == "__version__":
            from importlib.metadata import version  # noqa: PLC0415  # 45 ms of imports

            value = version("secretwatch")
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # the next use is a plain lookup
        return value


def __dir__() -> list[str]:
    """The module's names, the ones imported on first use included."""
    return sorted({*globals(), *_LAZY, "__version__"})
