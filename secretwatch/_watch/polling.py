"""Polling: a stat fingerprint of the volume, compared every ``interval`` seconds.

For file systems without notifications (NFS, SMB, FUSE) and for when inotify can't be had.
The fingerprint covers the layout, the ``..data`` target and each file's inode, size and
times; the periodic resync catches the rest (a same-size rewrite within one timestamp tick).
A new ``..data`` target is the kubelet's commit of a complete version: it is read at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable

from secretwatch._read.volume import WatchDir, fingerprint
from secretwatch._watch.debounce import Hint
from secretwatch._watch.runtime import Lane, Timer, runtime

__all__ = ["PollingSource"]


class PollingSource:
    """Hints when the volume's fingerprint changes; polls run on the watcher's load lane."""

    mode = "polling"

    def __init__(self, path: str, hint: Hint, lane: Lane, interval: float):
        self.hint = hint
        self._path = path
        self._lane = lane
        self._interval = interval
        self._last = fingerprint(path)  # before the first read: nothing slips between
        self._lock = threading.Lock()
        self._closed = False
        self._timer: Timer | None = None
        # Many watchers started together would poll in step: spread the first poll.
        self._schedule(random.uniform(0, interval))  # noqa: S311 - spreading load, not crypto

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Nothing to arm: the fingerprint covers the whole volume wherever it is."""
        return False

    def close(self) -> None:
        """Stop polling."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def _schedule(self, delay: float | None = None) -> None:
        with self._lock:
            if not self._closed:
                self._timer = runtime().scheduler.call_later(
                    self._interval if delay is None else delay,
                    lambda: self._lane.submit(self._poll),
                )

    def _poll(self) -> None:
        try:
            current = fingerprint(self._path)
            if current != self._last:
                # a new ..data target: the kubelet committed a complete version
                commit = current.revision not in (None, self._last.revision)
                self._last = current
                self.hint(commit=commit)
        finally:
            self._schedule()
