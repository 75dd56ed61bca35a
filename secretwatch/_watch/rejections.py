"""What a watcher says about versions it can't use: one report per bad version.

A rejected version is logged once (``secretwatch.rejected``, or ``secretwatch.missing`` for
a volume that is gone), with the version kept in force, and passed to ``subscribe_errors``
callbacks; re-reading the same
bad content (a resync) reports nothing new. A writer caught at work is not a rejection,
unless the volume stays that way for ``STUCK_AFTER`` seconds (a writer that died).
Rejected versions are remembered by a digest, never kept.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Literal

from secretwatch._errors import ReadError, SecretWatchError, VolumeNotFoundError, scrub
from secretwatch._log import log as _log
from secretwatch._watch.dispatch import Dispatcher

__all__ = ["STUCK_AFTER", "Rejections", "digest"]

STUCK_AFTER = 30.0  # seconds a volume may look mid-write before that is reported


def digest(files: dict[str, bytes]) -> str:
    """A digest of a version's content, to recognise a rejected version without keeping it."""
    hasher = hashlib.blake2b(digest_size=16)
    for key in sorted(files):
        data = files[key]
        name = os.fsencode(key)  # any name, UTF-8 or not (a single file's is not checked)
        hasher.update(b"%d:%s:%d:" % (len(name), name, len(data)))
        hasher.update(data)
    return hasher.hexdigest()


VersionField = Literal["volume_version", "settings_version"]


class Rejections:
    """The rejection state of one watcher. Used under the watcher's load lock.

    ``counts`` names, in the log events, the version it is given: a volume's
    (``volume_version``, a watcher's snapshot) or a LiveSettings' (``settings_version``).
    """

    def __init__(self, path: str, dispatcher: Dispatcher[Any], *, counts: VersionField):
        self._path = path
        self._dispatcher = dispatcher
        self._counts = counts
        self.last_error: SecretWatchError | None = None
        self._reported: str | None = None  # the content digest or error last reported
        self._busy_since: float | None = None  # since when loads keep finding a writer at work

    def reported(self, content: str) -> bool:
        """Whether the version with this digest was rejected and reported already."""
        return content == self._reported

    def reject(
        self,
        error: SecretWatchError,
        content: str | None,
        *,
        kept: int,
        revision: str | None = None,
    ) -> None:
        """Report ``error`` about one version, once.

        The version is known by the digest ``content`` when it could be read; else, for a
        kubelet volume, by its ``..data`` target ``revision``, so that the next rotation
        failing the same way (a file still too large) is reported too.
        """
        if isinstance(error, ReadError) and error.transient:
            now = time.monotonic()
            self._busy_since = self._busy_since or now
            if now - self._busy_since < STUCK_AFTER:
                _log.debug("secretwatch.busy", path=self._path, reason=error.message)
                return  # the writer's next step brings another event
            message = f"{error.message} for over {STUCK_AFTER:.0f} s"
            error = ReadError(message, path=error.path, key=error.key)
        self._busy_since = None
        if error.key is None:
            revision = None  # about the whole volume (gone, dangling): the same at any version
        about = content or f"{revision}: {type(error).__name__}: {error.message}"
        if about == self._reported:
            return
        self._reported = about
        self.last_error = error = scrub(error)  # kept and handed out: no frames, no context
        if isinstance(error, VolumeNotFoundError):
            _log.warning(
                "secretwatch.missing", path=error.path or self._path, **{self._counts: kept}
            )
        else:
            _log.warning(
                "secretwatch.rejected",
                path=error.path or self._path,
                key=error.key,
                error=error.message,
                error_type=type(error).__name__,
                **{self._counts: kept},
            )
        self._dispatcher.publish_error(error)

    def clear(self, *, recovered: int | None = None) -> None:
        """Nothing is wrong any more; with ``recovered`` (the version in force), say so."""
        if self.last_error is not None and recovered is not None:
            _log.info("secretwatch.recovered", path=self._path, **{self._counts: recovered})
        self.last_error = None
        self._reported = None
        self._busy_since = None
