"""Timing: seconds per call of functions side by side, the best of several rounds."""

from __future__ import annotations

import timeit
from collections.abc import Callable, Mapping
from typing import Any

Code = str | Callable[[], object]  # a statement, or a function to call
Timed = Code | tuple[Code, int]


def side_by_side(
    functions: Mapping[str, Timed],
    *,
    number: int,
    rounds: int = 7,
    namespace: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Seconds per run of each statement (or call of each function), each timed in turn in
    every round, the best round of each: a disturbance of the machine lands on all of them
    alike, not on one. Statements run in ``namespace``, with no call around them.

    One may come with its own number of runs per round, as ``(statement, number)``.
    """
    plan = {
        name: entry if isinstance(entry, tuple) else (entry, number)
        for name, entry in functions.items()
    }
    best = dict.fromkeys(plan, float("inf"))
    for _ in range(rounds):
        for name, (function, calls) in plan.items():
            seconds = timeit.timeit(function, number=calls, globals=namespace)
            best[name] = min(best[name], seconds / calls)
    return best
