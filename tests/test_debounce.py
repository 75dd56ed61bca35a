"""Debouncer: a burst of hints is one call after quiet, and an endless burst still gets one."""

from __future__ import annotations

import threading
import time

from secretwatch._watch.debounce import Debouncer
from secretwatch._watch.runtime import runtime

from .conftest import TIMEOUT


def test_a_burst_is_one_call() -> None:
    """Hints closer together than the delay produce a single call."""
    calls: list[float] = []
    fired = threading.Event()

    def action() -> None:
        calls.append(time.monotonic())
        fired.set()

    debouncer = Debouncer(0.2, action)
    start = time.monotonic()
    for _ in range(100):
        debouncer.hint()
    assert fired.wait(TIMEOUT)
    assert calls[0] - start >= 0.2
    debouncer.hint()  # a new burst after quiet is a new call
    fired.clear()
    assert fired.wait(TIMEOUT)
    assert len(calls) == 2


def test_an_endless_burst_is_capped_by_max_delay() -> None:
    """Hints that never stop still get a call, max_delay after the burst began."""
    fired = threading.Event()
    debouncer = Debouncer(0.05, fired.set, max_delay=0.2)
    start = time.monotonic()
    deadline = start + TIMEOUT
    while not fired.wait(0.001) and time.monotonic() < deadline:
        debouncer.hint()  # never 50 ms of quiet
    assert fired.is_set()
    assert time.monotonic() - start < 1.0


def test_zero_delay_calls_at_once_and_close_stops_calls() -> None:
    """delay=0 calls synchronously; after close() nothing is called."""
    calls: list[int] = []
    debouncer = Debouncer(0, lambda: calls.append(1))
    debouncer.hint()
    assert calls == [1]
    debouncer.close()
    debouncer.hint()
    assert calls == [1]


def test_a_commit_calls_at_once_and_ends_the_burst() -> None:
    """A commit hint calls synchronously, and the burst it interrupts gets no call of its own."""
    calls: list[str] = []
    second = threading.Event()

    def action() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            second.set()

    debouncer = Debouncer(0.05, action)
    debouncer.hint()  # a burst begins: a call is due in 50 ms
    debouncer.hint(commit=True)
    assert calls == [threading.current_thread().name]  # at once, on this thread
    debouncer.hint()  # a new burst
    assert second.wait(TIMEOUT)
    later = threading.Event()  # timers run in deadline order: after this, both bursts' are due
    runtime().scheduler.call_later(0.1, later.set)
    assert later.wait(TIMEOUT)
    assert len(calls) == 2  # the interrupted burst's timer did not call
