"""Delivering changes and rejections to subscribers, off the file-system event thread.

Each watcher has one dispatcher with its own lane: callbacks run one at a time, in the order
the changes were applied, never on watchdog's inotify thread and never while the volume is
being read. A callback that raises is logged and does not affect the other subscribers or
later changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Collection
from typing import Any, Generic, TypeVar

from secretwatch._errors import SecretWatchError, frames
from secretwatch._log import log as _log
from secretwatch._watch.runtime import Lane

__all__ = ["Dispatcher", "Subscription"]

E = TypeVar("E")  # what a subscription is called with
C = TypeVar("C")  # what a dispatcher's change events are


class Subscription(Generic[E]):
    """A registered callback; ``cancel()`` stops further calls.

    Also a context manager that cancels on exit.
    """

    __slots__ = ("_active", "_call", "_dispatcher", "_on_close", "callback", "keys")

    def __init__(
        self,
        dispatcher: Dispatcher[Any],
        callback: Callable[..., object],
        keys: frozenset[str] | None,
        on_close: Callable[[], object] | None = None,
        call: Callable[[E], object] | None = None,
    ):
        self._dispatcher = dispatcher
        self.callback = callback  # the subscriber's callable
        self._call: Callable[[E], object] = call or callback  # how an event is passed to it
        self.keys = keys
        self._on_close = on_close
        self._active = True

    @property
    def active(self) -> bool:
        """Whether the callback is still called."""
        return self._active

    def cancel(self) -> None:
        """Stop calling the callback; a call already running finishes. Safe to call twice."""
        self._active = False
        self._dispatcher._forget(self)

    def __enter__(self) -> Subscription[E]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        name = getattr(self.callback, "__qualname__", type(self.callback).__name__)
        keys = "all" if self.keys is None else sorted(self.keys)
        return f"Subscription(callback={name}, keys={keys}, active={self._active})"

    def _close(self) -> None:
        self._active = False
        if self._on_close is not None:
            self._on_close()

    def _wants(self, event: E) -> bool:
        if not self._active:
            return False
        keys = getattr(event, "keys", None)  # what a change touched; errors have none
        return self.keys is None or keys is None or not self.keys.isdisjoint(keys)


class Dispatcher(Generic[C]):
    """The subscribers of one watcher and the lane their callbacks run on.

    ``C`` is the type of its change events: :class:`Change` for a watcher. An event's
    ``repr`` is logged when a callback fails, so it must not show values.
    """

    def __init__(self, path: str):
        self._path = path
        self._lane = Lane("callbacks")
        self._lock = threading.Lock()
        self._changes: list[Subscription[C]] = []
        self._errors: list[Subscription[SecretWatchError]] = []
        self._closed = False

    def on_change(
        self,
        callback: Callable[..., object],
        keys: Collection[str] | None = None,
        on_close: Callable[[], object] | None = None,
        call: Callable[[C], object] | None = None,
    ) -> Subscription[C]:
        """Subscribe ``callback``, passing events with ``call`` (default: ``callback(event)``)."""
        if isinstance(keys, str):
            raise TypeError("keys must be a collection of key names, not one string")
        frozen = None if keys is None else frozenset(keys)
        subscription: Subscription[C] = Subscription(self, callback, frozen, on_close, call)
        with self._lock:
            if not self._closed:  # copy on write: a delivery in progress keeps its list
                self._changes = [*self._changes, subscription]
                return subscription
        subscription._close()  # the watcher has stopped
        return subscription

    def on_error(
        self, callback: Callable[[SecretWatchError], object]
    ) -> Subscription[SecretWatchError]:
        subscription: Subscription[SecretWatchError] = Subscription(self, callback, None)
        with self._lock:
            if not self._closed:
                self._errors = [*self._errors, subscription]
                return subscription
        subscription._close()
        return subscription

    async def stream(self, keys: Collection[str] | None = None) -> AsyncGenerator[C, None]:
        """Yield each change event published after iteration starts, until the dispatcher closes."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[C | None] = asyncio.Queue()

        def put(item: C | None) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        subscription = self.on_change(put, keys, on_close=lambda: put(None))
        try:
            while (change := await queue.get()) is not None:
                yield change
        finally:
            subscription.cancel()

    def publish_change(self, change: C) -> None:
        subscribers = self._changes
        self._lane.submit(lambda: self._deliver(subscribers, change))

    def publish_error(self, error: SecretWatchError) -> None:
        subscribers = self._errors
        self._lane.submit(lambda: self._deliver(subscribers, error))

    def close(self) -> None:
        """Drop undelivered events and cancel every subscription."""
        self._lane.close()
        with self._lock:
            self._closed = True
            subscriptions: list[Subscription[C] | Subscription[SecretWatchError]] = [
                *self._changes,
                *self._errors,
            ]
            self._changes, self._errors = [], []
        for subscription in subscriptions:
            subscription._close()

    def _forget(self, subscription: Subscription[Any]) -> None:
        with self._lock:
            self._changes = [s for s in self._changes if s is not subscription]
            self._errors = [s for s in self._errors if s is not subscription]

    def _deliver(self, subscribers: list[Subscription[E]], event: E) -> None:
        for subscription in subscribers:
            if not subscription._wants(event):
                continue
            try:
                subscription._call(event)
            except BaseException as exc:  # even sys.exit() in a callback is only logged
                # where it failed, without the message or the frames' locals: a callback
                # holds values (a renderer of tracebacks may show locals)
                _log.error(
                    "secretwatch.callback_failed",
                    path=self._path,
                    callback=getattr(subscription.callback, "__qualname__", "?"),
                    about=repr(event),
                    error_type=type(exc).__name__,
                    frames=frames(exc),
                )
