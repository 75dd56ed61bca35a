"""Directory watches through one inotify instance for the whole process.

secretwatch keeps its own watchdog ``InotifyFD`` (one file descriptor, one reader thread)
for every watcher in the process, so 1,000 watchers cost one inotify instance of the
node's per-user budget (``max_user_instances``, 128 by default), and re-creates it after
``fork()``. A watch is always on a directory, never on a key file: a file watch follows
the old version's inode and goes deaf after the first rotation.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from secretwatch._read.volume import DATA_LINK, WatchDir
from secretwatch._watch.debounce import Hint

if TYPE_CHECKING:
    from watchdog.observers.inotify_c import InotifyEvent, InotifyFD, WatchDescriptor

__all__ = ["InotifySource", "InotifyUnavailable", "inotify"]

_ids = itertools.count(1)
_GONE = {errno.ENOENT, errno.ENOTDIR}  # the directory went away before it was watched

_lock = threading.Lock()
_shared: InotifyFD | None = None


class InotifyUnavailable(Exception):
    """inotify can't be had (not Linux, instance or watch limit reached): poll instead."""


def inotify() -> InotifyFD:
    """The process's inotify instance, started on first use; the factory tests can fail."""
    global _shared  # noqa: PLW0603 - one instance per process, created lazily
    with _lock:
        if _shared is None:
            try:
                from watchdog.observers.inotify_c import InotifyFD  # noqa: PLC0415 - Linux only
            except (ImportError, OSError) as exc:  # watchdog raises UnsupportedLibcError
                raise InotifyUnavailable(f"inotify is not available here ({exc})") from exc
            try:
                instance = InotifyFD()
            except OSError as exc:  # EMFILE: the per-user instance limit
                raise InotifyUnavailable(f"inotify could not start: {exc.strerror}") from exc
            instance.name = "secretwatch-inotify"
            instance.start()
            _shared = instance
        return _shared


def _forget_after_fork() -> None:
    global _shared, _lock  # noqa: PLW0603
    _shared = None  # its reader thread does not exist in the child
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


@functools.cache
def _mask() -> int:
    """The events a volume directory watch asks for."""
    from watchdog.observers.inotify_c import InotifyConstants as C  # noqa: PLC0415

    return (
        C.IN_MODIFY
        | C.IN_ATTRIB
        | C.IN_CLOSE_WRITE
        | C.IN_MOVED_FROM
        | C.IN_MOVED_TO
        | C.IN_CREATE
        | C.IN_DELETE
        | C.IN_DELETE_SELF
        | C.IN_MOVE_SELF
        | C.IN_ONLYDIR
    )


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
        name = os.fsdecode(event.name)
        if self.names is None or event.is_delete_self or event.is_move_self or name in self.names:
            # ..data renamed (or linked) into place is the atomic writer's commit: the
            # version it names is complete, so there is no need to wait for quiet
            moved_in = (event.is_moved_to or event.is_create) and not event.is_directory
            self.source.hint(commit=name == DATA_LINK and moved_in)

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        self.alive = False  # the directory is gone: the next arm() replaces this watch
        self.source.hint()

    def on_queue_overflow(self) -> None:
        self.source.hint()  # events were lost: look again


class InotifySource:
    """One watcher's directory watches."""

    mode = "inotify"

    def __init__(self, hint: Hint):
        self._fd = inotify()
        self.hint = hint
        self._lock = threading.Lock()
        self._watches: dict[str, _DirWatch] = {}
        self._closed = False

    def arm(self, plan: Iterable[WatchDir]) -> bool:
        """Make the watched directories exactly ``plan``.

        Returns whether to look again: a directory is newly watched (what happened in it
        before is unseen), or vanished before it could be watched.

        Raises:
            InotifyUnavailable: the watch limit is reached, or a directory can't be watched.
        """
        wanted = dict(plan)
        look_again = False
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
                    continue  # already watched, or gone: the read that follows notices
                watch = _DirWatch(self, names, identity)
                try:
                    wd = self._fd.add_callback(
                        os.fsencode(path),
                        _mask(),  # type: ignore[arg-type]  # watchdog's NewType Mask
                        watch,
                        watch.id,  # type: ignore[arg-type]  # watchdog's NewType CallbackId
                    )
                except OSError as exc:
                    if exc.errno in _GONE:  # deleted between the listing and now
                        look_again = True
                        continue
                    raise InotifyUnavailable(f"cannot watch {path}: {exc.strerror}") from exc
                if wd < 0:  # EACCES: watchdog kept our callback under -1 and returned -1
                    self._fd.remove_callbacks([(wd, watch.id)])  # type: ignore[list-item]
                    raise InotifyUnavailable(f"cannot watch {path}: permission denied")
                watch.wd = wd
                self._watches[path] = watch
                look_again = True
        return look_again

    def close(self) -> None:
        """Remove every watch of this source."""
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
