"""Timing: seconds per call of functions side by side, the best of several rounds."""

from __future__ import annotations

import timeit
from collections.abc import Callable, Mapping

Timed = Callable[[], object] | tuple[Callable[[], object], int]


def side_by_side(
    functions: Mapping[str, Timed], *, number: int, rounds: int = 7
) -> dict[str, float]:
    """Seconds per call of each function, timed in turn in every round, the best round of
    each: a disturbance of the machine lands on all of them alike, not on one.

    A function may come with its own number of calls per round, as ``(function, number)``.
    """
    plan = {
        name: entry if isinstance(entry, tuple) else (entry, number)
        for name, entry in functions.items()
    }
    best = dict.fromkeys(plan, float("inf"))
    for _ in range(rounds):
        for name, (function, calls) in plan.items():
            best[name] = min(best[name], timeit.timeit(function, number=calls) / calls)
    return best
