"""Debouncing: many "something changed" hints in a burst become one call, after quiet.

A hint that marks a commit (the kubelet's ``..data`` swap: the new version is complete)
needs no quiet: it calls at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from secretwatch._watch.runtime import Timer, runtime

__all__ = ["Debouncer", "Hint"]


class Hint(Protocol):
    """How a change source says "look again"; ``commit``: a whole new version is in place."""

    def __call__(self, *, commit: bool = False) -> None: ...


class Debouncer:
    """Calls ``action`` once ``delay`` seconds after the last :meth:`hint` of a burst.

    A burst that never goes quiet still gets its call ``max_delay`` seconds after it began
    (``10 * delay`` by default). With ``delay == 0``, and for a commit, ``action`` is called
    at once. The call runs on the shared timer thread (at once: on the caller's): ``action``
    must only hand work on.
    """

    def __init__(self, delay: float, action: Callable[[], None], *, max_delay: float | None = None):
        self._delay = delay
        self._max_delay = 10 * delay if max_delay is None else max_delay
        self._action = action
        self._lock = threading.Lock()
        self._burst = 0  # numbers bursts, so that a flushed burst's timer does nothing
        self._burst_start: float | None = None
        self._deadline = 0.0
        self._timer: Timer | None = None
        self._closed = False

    def hint(self, *, commit: bool = False) -> None:
        """Something happened: call ``action`` after ``delay`` seconds of quiet, or at once
        for a ``commit`` (which also ends the burst under way: the call covers it)."""
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            if commit or self._delay == 0:
                self._end_burst()
            elif self._burst_start is None:
                self._burst_start = now
                self._deadline = now + self._delay
                burst = self._burst
                self._timer = runtime().scheduler.call_at(
                    self._deadline, lambda: self._elapsed(burst)
                )
                return
            else:
                self._deadline = min(now + self._delay, self._burst_start + self._max_delay)
                return
        self._action()

    def close(self) -> None:
        """Drop a pending call and ignore later hints."""
        with self._lock:
            self._closed = True
            self._end_burst()

    def _end_burst(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._burst_start = None
        self._burst += 1

    def _elapsed(self, burst: int) -> None:
        with self._lock:
            if self._closed or burst != self._burst:
                return  # closed, or a commit called for this burst already
            if time.monotonic() < self._deadline:  # more hints came: wait for quiet
                self._timer = runtime().scheduler.call_at(
                    self._deadline, lambda: self._elapsed(burst)
                )
                return
            self._end_burst()
        self._action()
