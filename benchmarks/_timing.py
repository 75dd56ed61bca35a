"""Timing: seconds per call of functions side by side, over several rounds."""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Code = str | Callable[[], object]  # a statement, or a function to call
Timed = Code | tuple[Code, int]


@dataclass(frozen=True)
class Timings:
    """Seconds per run of each statement, in every round."""

    rounds: dict[str, list[float]]

    def best(self, name: str) -> float:
        """The best round: the one least disturbed by the rest of the machine."""
        return min(self.rounds[name])

    def minus(self, baseline: str) -> Timings:
        """Every other statement's times, less ``baseline``'s in the same round."""
        base = self.rounds[baseline]
        return Timings(
            {
                name: [time - overhead for time, overhead in zip(times, base, strict=True)]
                for name, times in self.rounds.items()
                if name != baseline
            }
        )

    def ratio(self, name: str, peer: str) -> float:
        """The median, over the rounds, of ``name``'s time over ``peer``'s in the same round:
        steadier than a ratio of bests on a machine whose speed drifts."""
        pairs = zip(self.rounds[name], self.rounds[peer], strict=True)
        return statistics.median(mine / theirs for mine, theirs in pairs)


def side_by_side(
    functions: Mapping[str, Timed],
    *,
    number: int,
    rounds: int = 7,
    namespace: dict[str, Any] | None = None,
) -> Timings:
    """Time each statement (or call each function) in turn, in every round: a disturbance of
    the machine lands on all of them alike, not on one. Statements run in ``namespace``,
    with no call around them.

    One may come with its own number of runs per round, as ``(statement, number)``.
    """
    plan = {
        name: entry if isinstance(entry, tuple) else (entry, number)
        for name, entry in functions.items()
    }
    times: dict[str, list[float]] = {name: [] for name in plan}
    for _ in range(rounds):
        for name, (function, calls) in plan.items():
            times[name].append(timeit.timeit(function, number=calls, globals=namespace) / calls)
    return Timings(times)
