"""Timing: seconds per call of functions side by side, the best of several rounds."""

from __future__ import annotations

import timeit
from collections.abc import Callable, Mapping


def side_by_side(
    functions: Mapping[str, Callable[[], object]], *, number: int, rounds: int = 7
) -> dict[str, float]:
    """Seconds per call of each function, timed in turn in every round, the best round of
    each: a disturbance of the machine lands on all of them alike, not on one."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            best[name] = min(best[name], timeit.timeit(function, number=number) / number)
    return best
