"""The delay before a retry: exponential backoff with jitter, shared by every retry loop."""

from __future__ import annotations

import random

__all__ = ["backoff"]


def backoff(attempt: int, *, first: float, most: float) -> float:
    """Seconds to wait before retry ``attempt + 1``: ``first`` doubled per attempt, capped at
    ``most``, then a random point in its upper half (so that clients don't retry in step)."""
    delay = min(most, first * 2**attempt)
    return random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not cryptography)
