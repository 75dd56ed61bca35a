"""Where a watcher hears that its volume may have changed: inotify, else polling.

A source only says "look again" (``hint()``); what changed is decided by reading the volume
and comparing content, never from event types.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Protocol

from secretwatch._log import log as _log
from secretwatch._read.volume import WatchDir
from secretwatch._watch.debounce import Hint
from secretwatch._watch.inotify import InotifySource, InotifyUnavailable
from secretwatch._watch.polling import PollingSource
from secretwatch._watch.runtime import Lane

__all__ = ["Monitor", "Source", "missing_plan"]


class Source(Protocol):
    """What a watcher needs of a change source."""

    mode: str

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Watch exactly these directories (each with the names that matter, or None: all).

        Returns whether to look again (a directory is newly watched, or vanished).
        """

    def close(self) -> None:
        """Stop watching; no hint comes after this returns."""


def missing_plan(path: str) -> list[WatchDir]:
    """For a path that does not exist: watch its nearest existing ancestor for it."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    while not os.path.isdir(parent) and parent != os.path.dirname(parent):
        parent, name = os.path.split(parent)
    return [(parent, frozenset({name}))]


class Monitor:
    """A watcher's change notices: inotify, or polling when asked or when inotify fails.

    Falls back to polling (with a ``secretwatch.polling_fallback`` warning) when inotify
    can't start, and later if a watch is refused (the ``max_user_watches`` limit).
    """

    def __init__(self, path: str, hint: Hint, lane: Lane, *, polling: bool, interval: float):
        self._path = path
        self._hint = hint
        self._lane = lane
        self._interval = interval
        self._lock = threading.Lock()
        self._closed = False
        self._source: Source
        if polling:
            self._source = self._polling()
        else:
            try:
                self._source = InotifySource(hint)
            except InotifyUnavailable as exc:
                self._source = self._polling(reason=str(exc))

    @property
    def mode(self) -> str:
        """``"inotify"`` or ``"polling"``."""
        return self._source.mode

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Watch ``plan``; whether to look again (a directory is newly watched: what happened
        in it before is unseen; or it vanished)."""
        source = self._source
        try:
            return source.arm(plan)
        except InotifyUnavailable as exc:
            source.close()
            polling = self._polling(reason=str(exc))
            with self._lock:
                if not self._closed:
                    self._source = polling
                    return False
            polling.close()  # closed meanwhile
            return False

    def arm_without_listing(self) -> bool:
        """Watch what can be watched when the volume could not be listed: the directory
        itself, or the nearest existing ancestor for it to appear."""
        if os.path.isdir(self._path):
            return self.arm([(os.path.realpath(self._path), None)])
        return self.arm(missing_plan(self._path))

    def close(self) -> None:
        """Stop watching."""
        with self._lock:
            self._closed = True
            source = self._source
        source.close()

    def _polling(self, reason: str | None = None) -> PollingSource:
        if reason is not None:
            _log.warning("secretwatch.polling_fallback", path=self._path, reason=reason)
        return PollingSource(self._path, self._hint, self._lane, self._interval)
