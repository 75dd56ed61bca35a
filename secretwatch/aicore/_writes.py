"""Which reads of a secret came after this client's changes to it (for the replication
wait, which must not count a replication map read before the change was accepted)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator

from secretwatch.aicore._scope import Scope

__all__ = ["Writes"]


class Writes:
    """The creates and updates of each secret that are under way, and when the last one
    returned (accepted or not: a request that failed may still have been applied)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._under_way: Counter[tuple[Scope, str]] = Counter()
        self._returned: dict[tuple[Scope, str], float] = {}

    @contextlib.contextmanager
    def writing(self, scope: Scope, name: str) -> Iterator[None]:
        """Around a request that changes ``name`` in ``scope``."""
        key = (scope, name)
        with self._lock:
            self._under_way[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._under_way[key] -= 1
                self._returned[key] = time.monotonic()

    def read_after(self, scope: Scope, name: str, started: float) -> bool:
        """Whether a read of ``name`` that started at ``started`` (``time.monotonic()``)
        and has just returned came after every change this client made to it: none is
        under way, and the last one returned before the read started."""
        key = (scope, name)
        with self._lock:
            return self._under_way[key] == 0 and self._returned.get(key, float("-inf")) < started
