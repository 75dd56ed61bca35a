"""The threads every watcher in a process shares: one timer thread and a worker pool.

Watchers never start threads of their own. Timers (debounce, resync, polling) run on one
scheduler thread and only hand work on; the work runs on two pools of daemon threads, one
for reading volumes and one for user callbacks (so a blocked callback never holds up a
load), through per-watcher *lanes* that run their tasks one at a time, in order. Workers
start when work finds none idle and end after idling, so the count follows the work in
progress, not the number of watchers: with watchdog's one inotify thread, an idle process
watching 1,000 volumes runs two threads.

After ``fork()`` the child starts its own threads on first use (watchers created before
the fork do not run in the child).

Daemon threads: a blocked callback never keeps the interpreter from exiting.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from secretwatch._errors import frames
from secretwatch._log import log as _log

__all__ = ["CALLBACK_WORKERS", "LOAD_WORKERS", "WORKER_IDLE_TIMEOUT", "Lane", "Timer", "runtime"]

LOAD_WORKERS = 8  # volumes read at once, across all watchers
CALLBACK_WORKERS = 32  # callbacks running at once, across all watchers
WORKER_IDLE_TIMEOUT = 30.0  # idle workers end after this many seconds


class Timer:
    """A scheduled call; ``cancel()`` keeps it from running."""

    __slots__ = ("cancelled", "deadline", "fn")

    def __init__(self, deadline: float, fn: Callable[[], object]):
        self.deadline = deadline
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        """Keep the call from running (a no-op once it ran). What it would have called is
        let go at once, though the timer stays queued until its deadline."""
        self.cancelled = True
        self.fn = _nothing


def _nothing() -> None:
    """What a cancelled timer calls, should it be running already."""


class _Scheduler:
    """Runs short calls at monotonic deadlines on one daemon thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        thread = threading.Thread(target=self._run, name="secretwatch-timers", daemon=True)
        thread.start()

    def call_at(self, deadline: float, fn: Callable[[], object]) -> Timer:
        timer = Timer(deadline, fn)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), timer))
            if self._heap[0][2] is timer:
                self._cond.notify()
        return timer

    def call_later(self, delay: float, fn: Callable[[], object]) -> Timer:
        return self.call_at(time.monotonic() + delay, fn)

    def _next_due(self) -> Timer:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._cond.wait(min(wait, threading.TIMEOUT_MAX))  # a deadline years away

    def _run(self) -> None:
        while True:
            timer = self._next_due()
            if not timer.cancelled:
                _call(timer.fn)


class _Pool:
    """Daemon worker threads, started when a task finds no idle one, ended after idling.

    A task waits only when ``size`` workers are all busy: a callback that blocks holds one
    worker, not the pool. With nothing to do, the workers end and cost nothing.
    """

    def __init__(self, name: str, size: int, idle_timeout: float):
        self._name = name
        self._size = size
        self._idle_timeout = idle_timeout
        self._cond = threading.Condition()
        self._tasks: deque[Callable[[], object]] = deque()
        self._workers = 0
        self._idle = 0
        self._started = itertools.count(1)

    def submit(self, fn: Callable[[], object]) -> None:
        with self._cond:
            self._tasks.append(fn)
            if len(self._tasks) > self._idle and self._workers < self._size:
                self._workers += 1
                name = f"secretwatch-{self._name}-{next(self._started)}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
            else:
                self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._tasks:
                    self._idle += 1
                    notified = self._cond.wait(self._idle_timeout)
                    self._idle -= 1
                    if not notified and not self._tasks:
                        self._workers -= 1
                        return
                fn = self._tasks.popleft()
            _call(fn)


class Lane:
    """Tasks that run one at a time, in submission order, on a shared pool.

    ``pool`` is ``"loads"`` (reading volumes) or ``"callbacks"`` (user callbacks): slow
    callbacks can't hold up any watcher's loads.
    """

    def __init__(self, pool: Literal["loads", "callbacks"]) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._tasks: deque[Callable[[], object]] = deque()
        self._scheduled = False
        self._closed = False

    def submit(self, fn: Callable[[], object]) -> None:
        """Queue ``fn``; it runs after every task queued before it has finished."""
        with self._lock:
            if self._closed:
                return
            self._tasks.append(fn)
            if self._scheduled:
                return
            self._scheduled = True
        runtime().pools[self._pool].submit(self._run_one)

    def close(self) -> None:
        """Drop queued tasks and accept no more; a task already running finishes."""
        with self._lock:
            self._closed = True
            self._tasks.clear()

    def _run_one(self) -> None:
        with self._lock:
            if not self._tasks:  # closed meanwhile
                self._scheduled = False
                return
            fn = self._tasks.popleft()
        _call(fn)
        with self._lock:
            more = bool(self._tasks)
            self._scheduled = more
        if more:  # back to the pool between tasks: one busy lane cannot starve the others
            runtime().pools[self._pool].submit(self._run_one)


def _call(fn: Callable[[], object]) -> None:
    try:
        fn()
    except BaseException as exc:  # the last net: a worker thread must survive anything
        _log.error(  # no message and no locals: the frames below may hold a volume's bytes
            "secretwatch.internal_error",
            task=getattr(fn, "__qualname__", repr(fn)),
            error_type=type(exc).__name__,
            frames=frames(exc),
        )


class _Runtime:
    def __init__(self) -> None:
        self.scheduler = _Scheduler()
        self.pools = {
            "loads": _Pool("load", LOAD_WORKERS, WORKER_IDLE_TIMEOUT),
            "callbacks": _Pool("callback", CALLBACK_WORKERS, WORKER_IDLE_TIMEOUT),
        }


_lock = threading.Lock()
_instance: _Runtime | None = None


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads: start afresh on first use."""
    global _instance, _lock  # noqa: PLW0603
    _instance = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def runtime() -> _Runtime:
    """The process's shared scheduler and pool, started on first use."""
    global _instance  # noqa: PLW0603 - one runtime per process, created lazily
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = _Runtime()
    return _instance
