"""Where a watcher hears that its volume may have changed: inotify, or polling.

A source only says "look again" (``hint()``); what changed is decided by reading the volume
and comparing content, never from event types. Both sources are cheap per watcher:

- :class:`InotifySource` registers directory watches on watchdog's process-wide inotify
  instance (``InotifyFD.get_instance()``: one file descriptor and one thread for every
  watcher), never on a key file, whose watch would follow the old version and go deaf.
- :class:`PollingSource` compares a stat fingerprint of the volume every ``interval`` on
  the shared timer thread: for file systems without notifications (NFS, SMB, FUSE) and for
  when inotify can't be had.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Protocol

import structlog

from secretwatch._runtime import Lane, Timer, runtime
from secretwatch._volume import WatchDir, fingerprint

if TYPE_CHECKING:
    from watchdog.observers.inotify_c import InotifyEvent, InotifyFD, WatchDescriptor

__all__ = [
    "InotifySource",
    "InotifyUnavailable",
    "Monitor",
    "PollingSource",
    "Source",
    "missing_plan",
]

_log = structlog.get_logger("secretwatch")
_ids = itertools.count(1)


class InotifyUnavailable(Exception):
    """inotify can't be had (not Linux, instance or watch limit reached): poll instead."""


class Source(Protocol):
    """What a watcher needs of a change source."""

    mode: str

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Watch exactly these directories (each with the names that matter, or None: all).

        Returns whether a directory was newly watched: what happened in it before is unseen.
        """

    def close(self) -> None:
        """Stop watching; no hint comes after this returns."""


def inotify() -> InotifyFD:
    """watchdog's shared inotify instance; the one place a test can make inotify fail."""
    try:
        from watchdog.observers.inotify_c import InotifyFD  # noqa: PLC0415 - Linux only
    except (ImportError, OSError) as exc:  # watchdog raises UnsupportedLibcError off Linux
        raise InotifyUnavailable(f"inotify is not available here ({exc})") from exc
    try:
        return InotifyFD.get_instance()
    except OSError as exc:
        raise InotifyUnavailable(f"inotify could not start: {exc.strerror or exc}") from exc


def missing_plan(path: str) -> list[WatchDir]:
    """For a path that does not exist: watch its nearest existing ancestor for it."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    while not os.path.isdir(parent) and parent != os.path.dirname(parent):
        parent, name = os.path.split(parent)
    return [(parent, frozenset({name}))]


class _DirWatch:
    """One watched directory: the callback object watchdog's InotifyFD calls."""

    __slots__ = ("alive", "id", "identity", "names", "source", "wd")

    def __init__(self, source: InotifySource, names: frozenset[str] | None, identity: object):
        self.source = source
        self.names = names
        self.identity = identity
        self.id = next(_ids)
        self.alive = True
        self.wd: WatchDescriptor | None = None

    def on_event(self, event: InotifyEvent) -> None:
        if not event.mask & _mask()[0]:
            return  # a watch shared with another mask (IN_MASK_ADD): not ours
        if (
            self.names is None
            or event.is_delete_self
            or event.is_move_self
            or os.fsdecode(event.name) in self.names
        ):
            self.source.hint()

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        self.alive = False  # the directory is gone: the next arm() replaces this watch
        self.source.hint()

    def on_queue_overflow(self) -> None:
        self.source.hint()  # events were lost: look again


@functools.cache
def _mask() -> tuple[int, int]:
    """The event bits a volume watch wants, and the flags to add them with."""
    from watchdog.observers.inotify_c import InotifyConstants as C  # noqa: PLC0415

    events = (
        C.IN_MODIFY
        | C.IN_ATTRIB
        | C.IN_CLOSE_WRITE
        | C.IN_MOVED_FROM
        | C.IN_MOVED_TO
        | C.IN_CREATE
        | C.IN_DELETE
        | C.IN_DELETE_SELF
        | C.IN_MOVE_SELF
    )
    # IN_MASK_ADD: never narrow the mask of a watch another user of the instance shares
    return events, events | C.IN_ONLYDIR | C.IN_MASK_ADD


class InotifySource:
    """Directory watches on watchdog's shared inotify instance."""

    mode = "inotify"

    def __init__(self, hint: Callable[[], None]):
        self._fd = inotify()
        self.hint = hint
        self._lock = threading.Lock()
        self._watches: dict[str, _DirWatch] = {}
        self._closed = False

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Make the watched directories exactly ``plan``; raise InotifyUnavailable on limits."""
        wanted = dict(plan)
        added = False
        with self._lock:
            if self._closed:
                return False
            stale = [
                path
                for path, watch in self._watches.items()
                if not watch.alive
                or wanted.get(path, ()) != watch.names
                or _identity(path) != watch.identity
            ]
            self._remove(stale)
            for path, names in wanted.items():
                identity = _identity(path)
                if path in self._watches or identity is None:
                    continue  # already watched, or gone: a later event or resync re-arms
                watch = _DirWatch(self, names, identity)
                try:
                    wd = self._fd.add_callback(
                        os.fsencode(path),
                        _mask()[1],  # type: ignore[arg-type]  # watchdog's NewType Mask
                        watch,
                        watch.id,  # type: ignore[arg-type]  # watchdog's NewType CallbackId
                    )
                except OSError as exc:
                    raise InotifyUnavailable(f"cannot watch {path}: {exc.strerror}") from exc
                if wd < 0:  # watchdog returns -1 for EACCES instead of raising
                    raise InotifyUnavailable(f"cannot watch {path}: permission denied")
                watch.wd = wd
                self._watches[path] = watch
                added = True
        return added

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._remove(list(self._watches))

    def _remove(self, paths: list[str]) -> None:
        dropped = [self._watches.pop(path) for path in paths]
        ids = [(w.wd, w.id) for w in dropped if w.alive and w.wd is not None]
        for watch in dropped:
            watch.alive = False
        if ids:
            self._fd.remove_callbacks(ids)  # type: ignore[arg-type]


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class PollingSource:
    """Compares a stat fingerprint of the volume every ``interval`` seconds."""

    mode = "polling"

    def __init__(self, path: str, hint: Callable[[], None], lane: Lane, interval: float):
        self.hint = hint
        self._path = path
        self._lane = lane
        self._interval = interval
        self._last: Hashable = fingerprint(path)  # before the first read: nothing slips between
        self._lock = threading.Lock()
        self._closed = False
        self._timer: Timer | None = None
        self._schedule()

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Nothing to arm: the fingerprint covers the whole volume wherever it is."""
        return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def _schedule(self) -> None:
        with self._lock:
            if not self._closed:
                self._timer = runtime().scheduler.call_later(
                    self._interval, lambda: self._lane.submit(self._poll)
                )

    def _poll(self) -> None:
        try:
            current = fingerprint(self._path)
            if current != self._last:
                self._last = current
                self.hint()
        finally:
            self._schedule()


class Monitor:
    """A watcher's change notices: inotify, or polling when asked or when inotify fails.

    Falls back to polling (with a ``secretwatch.polling_fallback`` warning) when inotify
    can't start, and later if a watch is refused (the ``max_user_watches`` limit).
    """

    def __init__(
        self, path: str, hint: Callable[[], None], lane: Lane, *, polling: bool, interval: float
    ):
        self._path = path
        self._hint = hint
        self._lane = lane
        self._interval = interval
        self._lock = threading.Lock()
        self._closed = False
        self._source: Source
        if polling:
            self._source = self._polling()
        else:
            try:
                self._source = InotifySource(hint)
            except InotifyUnavailable as exc:
                self._source = self._polling(reason=str(exc))

    @property
    def mode(self) -> str:
        """``"inotify"`` or ``"polling"``."""
        return self._source.mode

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Watch ``plan``; whether a directory is newly watched (what happened in it before
        was not seen)."""
        source = self._source
        try:
            return source.arm(plan)
        except InotifyUnavailable as exc:
            source.close()
            polling = self._polling(reason=str(exc))
            with self._lock:
                if not self._closed:
                    self._source = polling
                    return False
            polling.close()  # closed meanwhile
            return False

    def arm_without_listing(self) -> bool:
        """Watch what can be watched when the volume could not be listed: the directory
        itself, or the nearest existing ancestor for it to appear."""
        if os.path.isdir(self._path):
            return self.arm([(os.path.realpath(self._path), None)])
        return self.arm(missing_plan(self._path))

    def close(self) -> None:
        """Stop watching."""
        with self._lock:
            self._closed = True
            source = self._source
        source.close()

    def _polling(self, reason: str | None = None) -> PollingSource:
        if reason is not None:
            _log.warning("secretwatch.polling_fallback", path=self._path, reason=reason)
        return PollingSource(self._path, self._hint, self._lane, self._interval)
