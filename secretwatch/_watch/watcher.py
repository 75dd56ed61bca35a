"""SecretWatcher: a mounted secret volume, always current, safe to read from any thread.

Data flows one way: a file-system event (or a poll, or the periodic resync) -> debounce ->
load (read one consistent version, decode, validate) -> swap the snapshot -> notify
subscribers. Reads of the current snapshot take no lock: a snapshot is immutable and
swapped by one attribute assignment.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import AsyncGenerator, Callable, Collection, Mapping
from typing import Any, Literal, Self, TypedDict, Unpack

from secretwatch._errors import ReadError, SecretWatchError, VolumeNotFoundError, outward
from secretwatch._log import log as _log
from secretwatch._read.decoders import Decoders, DecoderSpec
from secretwatch._read.load import build_snapshot
from secretwatch._read.snapshot import Change, Snapshot
from secretwatch._read.volume import Layout, Listing, is_subpath_mount, read_volume
from secretwatch._watch.debounce import Debouncer
from secretwatch._watch.dispatch import Dispatcher, Subscription
from secretwatch._watch.monitor import Monitor
from secretwatch._watch.rejections import Rejections, digest
from secretwatch._watch.runtime import Lane, Timer, runtime

__all__ = ["SecretWatcher", "watch"]

DEFAULT_DEBOUNCE = 0.1
DEFAULT_RESYNC_INTERVAL = 60.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_MAX_BYTES = 1024 * 1024  # a Kubernetes Secret holds at most 1 MiB in all

_State = Literal["new", "running", "stopped"]


class SecretWatcher:
    """Watches a mounted secret volume and holds its latest valid, decoded snapshot.

    Args:
        path: the volume directory (a Kubernetes secret mount with ``..data``, or a plain
            directory), or a single file.
        decoders: how to decode each key: a mapping from a key or glob pattern to
            ``"text"`` (UTF-8, the default), ``"bytes"``, ``"json"``, ``"base64"`` or a
            callable ``bytes -> value``. A value that fails to decode rejects the version:
            a callable that raises anything (``SystemExit`` too) rejects it, reported by
            the exception's type only.
        validate: called with each new candidate :class:`Snapshot`; raising or returning
            ``False`` rejects it. Raise :class:`ValidationError` to give your own reason;
            other exceptions (any ``BaseException``) are reported by type only (their
            messages may quote values).
        debounce: seconds of quiet to wait after an event before reading, so that a burst
            of events becomes one reload. 0 reads at once. A swap of ``..data`` (the
            kubelet's commit of a complete version) is read at once whatever the debounce,
            when ``path`` is the volume's directory (or, with inotify, one of its files).
        resync_interval: seconds between full re-reads that back up the events (missed
            or overflowed notifications); ``None`` turns the resync off.
        polling: ``True`` polls instead of using inotify; ``False`` uses inotify (falling
            back to polling with a warning when inotify can't be had); ``None`` reads the
            ``SECRETWATCH_POLLING`` environment variable, else behaves as ``False``.
        poll_interval: seconds between polls in polling mode.
        max_bytes: the largest file accepted; a larger one rejects the version.
        required: whether the path must exist at :meth:`start`. With ``False`` a missing
            volume gives an empty snapshot (version 0) and is loaded when it appears.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Exceptions from your code: anything a decoder or ``validate`` raises, ``BaseException``
    included (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, your own), is that
    code's failure and rejects the version (``last_error``, a ``secretwatch.rejected`` event,
    the ``subscribe_errors`` callbacks); anything a callback raises is logged
    (``secretwatch.callback_failed``). The watcher keeps watching. The one exception: a
    ``KeyboardInterrupt`` on the main thread, where a Ctrl-C lands, while :meth:`start` or
    :meth:`reload` runs there, is raised again from it (a new one, without frames below it
    or chained exceptions), so Ctrl-C still interrupts.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        decoders: Mapping[str, DecoderSpec] | None = None,
        validate: Callable[[Snapshot], object] | None = None,
        debounce: float = DEFAULT_DEBOUNCE,
        resync_interval: float | None = DEFAULT_RESYNC_INTERVAL,
        polling: bool | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        required: bool = True,
    ):
        _check_seconds("debounce", debounce, zero=True)
        if resync_interval is not None:
            _check_seconds("resync_interval", resync_interval)
        _check_seconds("poll_interval", poll_interval)
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a whole number > 0, not {max_bytes!r}")
        if not os.fspath(path):
            raise ValueError("path must not be empty")
        self._path = os.path.abspath(path)  # a later chdir must not move the volume
        self._decoders = Decoders(decoders)
        self._validate = validate
        self._debouncer = Debouncer(debounce, self._request_load)
        self._resync_interval = resync_interval
        self._polling = _polling_from_env() if polling is None else polling
        self._poll_interval = poll_interval
        self._max_bytes = max_bytes
        self._required = required

        self._snapshot = Snapshot.empty(self._path)
        self._changed = threading.Condition()  # notified on every swap and on stop
        self._lock = threading.Lock()  # guards the state and timers below
        self._load_lock = threading.Lock()  # one load at a time
        self._state: _State = "new"
        self._monitor: Monitor | None = None
        self._loads = Lane("loads")
        self._dispatcher: Dispatcher[Change] = Dispatcher(self._path)
        self._load_queued = False
        self._resync: Timer | None = None
        self._layout: Layout | None = None
        self._revision: str | None = None  # the ..data target of the last listing
        self._armed = False
        self._rejections = Rejections(self._path, self._dispatcher, counts="volume_version")
        self._loading_thread: int | None = None
        self._look_again = False

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Load the volume once, synchronously, then watch it. Returns the watcher.

        Raises:
            VolumeNotFoundError: the path does not exist and ``required`` is true.
            SecretWatchError: the first version is rejected: there is nothing good to keep.
            RuntimeError: the watcher was stopped before (a watcher runs once).
            KeyboardInterrupt: a Ctrl-C while it loads (a new one: see the class).

        Whatever it raises has no traceback frames below ``start()`` and no chained
        exceptions: their locals and messages could hold the volume's values.
        """
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RuntimeError("a stopped SecretWatcher cannot start again: create a new one")
            self._state = "running"
        failure: BaseException | None = None
        try:
            self._monitor = Monitor(
                self._path,
                self._debouncer.hint,
                self._loads,
                polling=self._polling,
                interval=self._poll_interval,
            )
            self._load(first=True)
        except BaseException as exc:
            failure = exc
        if failure is not None:
            self.stop()
            # without the frames below start() (their locals hold the volume's bytes) and
            # without the exceptions it was raised during (which may quote them)
            error = outward(failure)
            del failure  # not left in this frame's locals either
            raise error
        self._schedule_resync()
        if self._layout is Layout.FILE and is_subpath_mount(self._path):
            _log.warning(
                "secretwatch.subpath_mount",
                path=self._path,
                hint="a subPath mount never sees a rotation: mount the whole secret volume "
                "and watch its directory",
            )
        return self

    def stop(self) -> None:
        """Stop watching. The last snapshot stays readable; undelivered callbacks are dropped.

        Safe to call more than once and from a callback.
        """
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
            if self._resync is not None:
                self._resync.cancel()
            monitor = self._monitor
        self._debouncer.close()
        if monitor is not None:
            monitor.close()
        self._loads.close()
        self._dispatcher.close()
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reading ---------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The watched path."""
        return self._path

    @property
    def snapshot(self) -> Snapshot:
        """The latest valid snapshot (version 0 and empty before anything was loaded)."""
        return self._snapshot

    def __getitem__(self, key: str) -> Any:
        """The decoded value of ``key`` in the latest snapshot; ``KeyError`` if absent."""
        return self._snapshot._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded value of ``key`` in the latest snapshot, or ``default``."""
        return self._snapshot._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._snapshot._data

    @property
    def last_error(self) -> SecretWatchError | None:
        """Why the volume's current content is not in use (rejected, or missing), or ``None``.

        Set when a version is rejected or the volume disappears; cleared when a version is
        applied or the volume's content is that of the current snapshot again.
        """
        return self._rejections.last_error

    @property
    def mode(self) -> str | None:
        """``"inotify"`` or ``"polling"`` once started, else ``None``."""
        monitor = self._monitor
        return None if monitor is None else monitor.mode

    @property
    def running(self) -> bool:
        """Whether the watcher is started and not stopped."""
        return self._state == "running"

    def __repr__(self) -> str:
        snapshot = self._snapshot
        return (
            f"SecretWatcher(path={self._path!r}, version={snapshot.version}, "
            f"keys={len(snapshot)}, mode={self.mode!r}, state={self._state!r})"
        )

    # -- following changes -----------------------------------------------------------

    def subscribe(
        self, callback: Callable[[Change], object], *, keys: Collection[str] | None = None
    ) -> Subscription[Change]:
        """Call ``callback(change)`` after each applied change (only those touching ``keys``).

        Callbacks run on a secretwatch worker thread, one change at a time, in order. An
        exception in a callback, of any kind (``SystemExit`` too), is logged by its type and
        where it was raised (``secretwatch.callback_failed``) and affects nothing else.
        """
        return self._dispatcher.on_change(callback, keys)

    def subscribe_errors(
        self, callback: Callable[[SecretWatchError], object]
    ) -> Subscription[SecretWatchError]:
        """Call ``callback(error)`` when a version is rejected or the volume goes missing.

        Runs like :meth:`subscribe` callbacks, in order with them.
        """
        return self._dispatcher.on_error(callback)

    def wait_for_change(
        self, timeout: float | None = None, *, since: int | None = None
    ) -> Snapshot | None:
        """Block until a change is applied; return the snapshot then in force, or ``None``.

        Waits for a version newer than ``since`` (default: the current version). Passing the
        version seen before writing avoids missing a change applied before the call::

            seen = secrets.snapshot.version
            rotate_the_secret()
            secrets.wait_for_change(timeout=5.0, since=seen)

        Returns ``None`` on timeout, and when the watcher stops.
        """
        with self._changed:
            version = self._snapshot.version if since is None else since
            self._changed.wait_for(
                lambda: self._snapshot.version > version or self._state == "stopped", timeout
            )
            snapshot = self._snapshot
        return snapshot if snapshot.version > version else None

    async def changes(self, *, keys: Collection[str] | None = None) -> AsyncGenerator[Change, None]:
        """Yield each change applied after iteration starts (asyncio), until the watcher stops.

        Examples:
            >>> async def follow(secrets):
            ...     async for change in secrets.changes(keys={"password"}):
            ...         print("new password, version", change.new.version)
        """
        async for change in self._dispatcher.stream(keys):
            yield change

    def reload(self) -> Snapshot:
        """Re-read the volume now, synchronously, and return the snapshot in force.

        A valid new version is applied (and callbacks fire) as for an event. A rejected one
        keeps the current snapshot and sets :attr:`last_error`; this does not raise for it.
        A Ctrl-C on the main thread is raised as by :meth:`start`, without frames below
        ``reload()``; it is not a rejection.
        """
        if self._state != "running":
            raise RuntimeError(f"reload() needs a running watcher (this one is {self._state})")
        try:
            return self._load(forced=True)
        except BaseException as exc:  # a Ctrl-C, say: without the frames below reload()
            failure = exc
        error = outward(failure)
        del failure  # not left in this frame's locals either
        raise error

    # -- the pipeline: event -> debounce -> load -> swap -> notify -------------------

    def _request_load(self) -> None:
        with self._lock:
            if self._state != "running" or self._load_queued:
                return  # a queued load will see this change too
            self._load_queued = True
        self._loads.submit(self._queued_load)

    def _queued_load(self) -> None:
        with self._lock:
            self._load_queued = False
        self._load()

    def _schedule_resync(self) -> None:
        if self._resync_interval is None:
            return
        with self._lock:
            if self._state == "running":
                self._resync = runtime().scheduler.call_later(
                    self._resync_interval, self._resync_due
                )

    def _resync_due(self) -> None:
        self._request_load()
        self._schedule_resync()

    def _load(self, *, first: bool = False, forced: bool = False) -> Snapshot:
        if self._loading_thread == threading.get_ident():
            raise RuntimeError("reload() can't be called from validate or a decoder")
        with self._load_lock:
            self._loading_thread = threading.get_ident()
            self._look_again = False
            try:
                return self._load_locked(first=first, forced=forced)
            finally:
                self._loading_thread = None
                if self._look_again:
                    self._debouncer.hint()

    def _load_locked(self, *, first: bool, forced: bool) -> Snapshot:
        current = self._snapshot
        if self._state != "running":
            return current
        self._armed = False
        self._revision = None
        content: str | None = None
        try:
            version = read_volume(
                self._path, max_bytes=self._max_bytes, on_listing=self._arm_listing
            )
            if current.version and current._same_content(version.files):
                self._rejections.clear(recovered=current.version)
                return current
            content = digest(version.files)
            if not forced and self._rejections.reported(content):
                return current  # this rejected version was reported already
            candidate = build_snapshot(
                version.files,
                version=current.version + 1,
                path=self._path,
                decoders=self._decoders,
                validate=self._validate,
            )
        except SecretWatchError as exc:
            if first and (self._required or not _is_absence(exc)):
                raise
            gone = isinstance(exc, VolumeNotFoundError)  # maybe after it was listed
            if (gone or not self._armed) and self._monitor is not None:
                # nothing listed to compare with, or the listed directories are gone: watch
                # what is there now, and look again once the new watch is in place
                self._look_again = self._monitor.arm_without_listing()
            self._rejections.reject(
                exc, content, revision=self._revision, kept=self._snapshot.version
            )
            return self._snapshot
        if self._state != "running":
            return current  # stopped while loading: nothing is applied after stop()
        self._swap(candidate)
        return candidate

    def _arm_listing(self, listing: Listing) -> bool:
        self._layout = listing.layout
        self._revision = listing.revision
        self._armed = True
        return self._monitor is not None and self._monitor.arm(listing.watch)

    def _swap(self, candidate: Snapshot) -> None:
        with self._changed:
            old = self._snapshot
            self._snapshot = candidate
            self._changed.notify_all()
        self._rejections.clear()
        change = Change.between(old, candidate)
        if old.version == 0:
            _log.info(
                "secretwatch.loaded",
                path=self._path,
                volume_version=candidate.version,
                keys=sorted(candidate),
                layout=str(self._layout),
                mode=self.mode,
            )
        else:
            _log.info(
                "secretwatch.changed",
                path=self._path,
                volume_version=candidate.version,
                added=sorted(change.added),
                removed=sorted(change.removed),
                modified=sorted(change.modified),
            )
        self._dispatcher.publish_change(change)


class WatchOptions(TypedDict, total=False):
    """The keyword options of :class:`SecretWatcher`, for :func:`watch`."""

    decoders: Mapping[str, DecoderSpec] | None
    validate: Callable[[Snapshot], object] | None
    debounce: float
    resync_interval: float | None
    polling: bool | None
    poll_interval: float
    max_bytes: int
    required: bool


def watch(path: str | os.PathLike[str], **options: Unpack[WatchOptions]) -> SecretWatcher:
    """Create a :class:`SecretWatcher` for ``path`` with ``options`` and start it.

    Examples:
        >>> with secretwatch.watch("/etc/my-generic-secret") as secrets:  # doctest: +SKIP
        ...     token = secrets["some-credential"]
    """
    return SecretWatcher(path, **options).start()


def _is_absence(error: SecretWatchError) -> bool:
    """Missing, or caught mid-write: with ``required=False`` the watcher waits for it."""
    return isinstance(error, VolumeNotFoundError) or (
        isinstance(error, ReadError) and error.transient
    )


def _check_seconds(name: str, value: object, *, zero: bool = False) -> None:
    """A duration must be a finite number, > 0 (or >= 0 when ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a finite number {'>=' if zero else '>'} 0, not {value}")


def _polling_from_env() -> bool:
    return os.environ.get("SECRETWATCH_POLLING", "").strip().lower() in {"1", "true", "yes", "on"}
