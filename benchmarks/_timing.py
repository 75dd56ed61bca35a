"""Timing helpers: the best of several repeats, in seconds per call."""

from __future__ import annotations

import timeit
from collections.abc import Callable


def per_call(function: Callable[[], object], *, number: int, repeat: int = 5) -> float:
    """Seconds per call of ``function``: the best of ``repeat`` runs of ``number`` calls
    (the least disturbed by the rest of the machine)."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number
