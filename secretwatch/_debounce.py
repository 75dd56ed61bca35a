"""Debouncing: many "something changed" hints in a burst become one call, after quiet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from secretwatch._runtime import Timer, runtime

__all__ = ["Debouncer"]


class Debouncer:
    """Calls ``action`` once ``delay`` seconds after the last :meth:`hint` of a burst.

    A burst that never goes quiet still gets its call ``max_delay`` seconds after it began
    (``10 * delay`` by default). With ``delay == 0`` every hint calls ``action`` at once.
    The call runs on the shared timer thread: ``action`` must only hand work on.
    """

    def __init__(self, delay: float, action: Callable[[], None], *, max_delay: float | None = None):
        self._delay = delay
        self._max_delay = 10 * delay if max_delay is None else max_delay
        self._action = action
        self._lock = threading.Lock()
        self._burst_start: float | None = None
        self._deadline = 0.0
        self._timer: Timer | None = None
        self._closed = False

    def hint(self) -> None:
        """Something happened: call ``action`` after ``delay`` seconds of quiet."""
        if self._delay == 0:
            if not self._closed:
                self._action()
            return
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            if self._burst_start is None:
                self._burst_start = now
                self._deadline = now + self._delay
                self._timer = runtime().scheduler.call_at(self._deadline, self._elapsed)
            else:
                self._deadline = min(now + self._delay, self._burst_start + self._max_delay)

    def close(self) -> None:
        """Drop a pending call and ignore later hints."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def _elapsed(self) -> None:
        with self._lock:
            if self._closed:
                return
            if time.monotonic() < self._deadline:  # more hints came: wait for quiet
                self._timer = runtime().scheduler.call_at(self._deadline, self._elapsed)
                return
            self._burst_start = None
            self._timer = None
        self._action()
