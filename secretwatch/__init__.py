"""secretwatch: follow rotated secrets in mounted volumes without restarting.

Example:
    >>> import secretwatch
    >>> with secretwatch.watch("/etc/my-generic-secret") as secrets:  # doctest: +SKIP
    ...     token = secrets["some-credential"]
"""

from importlib.metadata import version as _version

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
from secretwatch._settings.live import LiveSettings, watch_settings
from secretwatch._settings.sources import SecretsDir
from secretwatch._watch.dispatch import Subscription
from secretwatch._watch.watcher import SecretWatcher, WatchOptions, watch

__version__ = _version("secretwatch")

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
