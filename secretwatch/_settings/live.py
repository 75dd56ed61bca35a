"""LiveSettings: a pydantic-settings model that follows the rotation of its secrets directories.

Two stages, each flowing one way. Every secrets directory is watched by a
:class:`SecretWatcher`, which yields consistent versions of the volume's bytes. On every
change of any directory the model is built again from the current version of each
(:func:`build_model`: pydantic-settings' own sources and precedence, with the secrets read
from the snapshots). A model that validates is swapped in by one attribute assignment and
subscribers are called with ``(old, new)``; one that does not is rejected: the previous
instance stays in force and :attr:`LiveSettings.last_error` says why.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Collection
from dataclasses import dataclass
from typing import Any, Generic, Literal, Self, TypeVar, overload

from pydantic_settings import BaseSettings

from secretwatch._errors import SecretWatchError, outward, passed_on
from secretwatch._log import log as _log
from secretwatch._read.snapshot import Change, Snapshot
from secretwatch._settings.shadows import ShadowWarnings
from secretwatch._settings.sources import (
    SecretsDir,
    build_model,
    refuse_command_line,
    secrets_dirs,
    split_kwargs,
)
from secretwatch._watch.dispatch import Dispatcher, Subscription
from secretwatch._watch.rejections import Rejections
from secretwatch._watch.watcher import SecretWatcher, WatchOptions

__all__ = ["LiveSettings", "watch_settings"]

M = TypeVar("M", bound=BaseSettings)

_NOT_FOR_SETTINGS = ("decoders", "validate")  # every key is text for the model, which validates


class _NotStarted:
    """``LiveSettings.current`` until the first model is built: reading it raises.

    A non-data descriptor (as ``functools.cached_property`` is): the first build puts
    ``current`` in the instance's ``__dict__``, which then wins over this, so each read of
    ``live.current`` is a plain attribute read, as fast as a dict lookup, with no call.
    """

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, instance: LiveSettings[M], owner: type[Any]) -> M: ...
    def __get__(self, instance: LiveSettings[M] | None, owner: type[Any]) -> Self | M:
        if instance is None:
            return self
        raise RuntimeError("LiveSettings has not been started: call start() first")

    def __repr__(self) -> str:  # what help(LiveSettings) shows for it
        return "<the latest valid model instance (read-only)>"


@dataclass(frozen=True, slots=True, repr=False)
class _Update(Generic[M]):
    """One applied change of the settings, as delivered to subscribers."""

    old: M
    new: M
    version: int
    keys: frozenset[str]  # the fields whose values differ

    def __repr__(self) -> str:  # logged when a callback fails: names only, never values
        return (
            f"SettingsChange(model={type(self.new).__name__}, version={self.version}, "
            f"fields={sorted(self.keys)!r})"
        )


class LiveSettings(Generic[M]):
    """A pydantic-settings model that is rebuilt, validated, whenever its secrets rotate.

    Args:
        model: a ``pydantic_settings.BaseSettings`` subclass.
        secrets_dir: the secrets directory, or a list of them (a later one wins); by default
            the model's own ``model_config["secrets_dir"]``. Each one is watched as a volume.
        watch_options: options for the watchers of the directories (``debounce``,
            ``polling``, ``resync_interval``, ``max_bytes``, ``required``, ...).
        **model_kwargs: what you would pass to ``model(...)``: field values (they win over
            every source, as always) and pydantic-settings' options such as ``_env_file``
            or ``_env_prefix``.

    The model is built exactly as ``model(**model_kwargs)`` builds it (init values >
    environment > dotenv > secrets, or the order of its ``settings_customise_sources``),
    except that the secret files are read from one consistent version of each volume. The
    environment and dotenv file are read again at each rebuild; a rebuild follows a change
    of a secrets directory (or :meth:`reload`).

    A secret file whose field (or part of a nested field) a source of higher priority
    gives never reaches the model, whatever it holds: such a file is logged as a
    ``secretwatch.shadowed`` warning naming the field, the file and the winning source
    (never a value), once while it stays shadowed, at start or at the build that finds it.
    """

    def __init__(
        self,
        model: type[M],
        *,
        secrets_dir: SecretsDir | None = None,
        watch_options: WatchOptions | None = None,
        **model_kwargs: Any,
    ):
        if not (isinstance(model, type) and issubclass(model, BaseSettings)):
            raise TypeError(f"model must be a pydantic-settings BaseSettings class, not {model!r}")
        refuse_command_line(model)
        options: dict[str, Any] = dict(watch_options or {})
        for name in _NOT_FOR_SETTINGS:
            if name in options:
                raise TypeError(f"watch_options can't set {name!r}: the settings model validates")
        self._model = model
        self._init_kwargs, self._options = split_kwargs(model_kwargs)
        self._dirs = secrets_dirs(model, secrets_dir)
        self._watchers = [
            SecretWatcher(path, decoders={"*": "bytes"}, **options) for path in self._dirs
        ]
        self._dispatcher: Dispatcher[_Update[M]] = Dispatcher(self._dirs[0])
        self._rejections = Rejections(self._dirs[0], self._dispatcher, counts="settings_version")
        self._lock = threading.Lock()  # guards the state
        self._build_lock = threading.Lock()  # one build at a time
        self._changed = threading.Condition()  # notified on every swap and on stop
        self._state: Literal["new", "running", "stopped"] = "new"
        self._version = 0
        self._built_from: tuple[int, ...] = ()  # the volume versions of the last build
        self._shadow_warnings = ShadowWarnings(model.__name__)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "current":  # set only by _apply, through vars(self)
            raise AttributeError("LiveSettings.current is read-only: it follows the secrets")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name == "current":
            raise AttributeError("LiveSettings.current is read-only: it follows the secrets")
        super().__delattr__(name)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Load every secrets directory and build the model once, synchronously; then watch.

        Raises:
            VolumeNotFoundError: a directory does not exist (unless ``required=False`` was
                given in ``watch_options``).
            SecretWatchError: the first version can't be read, or the model built from it
                is not valid (:class:`ValidationError`, with the fields and no values).
            RuntimeError: it was stopped before (it runs once).
            KeyboardInterrupt: a Ctrl-C while it loads (a new one).

        Whatever it raises has no traceback frames below ``start()`` and no chained
        exceptions. Anything the model's validators raise, ``BaseException`` included, is a
        :class:`ValidationError`, except a ``KeyboardInterrupt`` on the main thread (a
        Ctrl-C), as for :class:`SecretWatcher`.
        """
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RuntimeError("a stopped LiveSettings cannot start again: create a new one")
            self._state = "running"
        failure: BaseException | None = None
        try:
            for watcher in self._watchers:
                watcher.subscribe(self._volume_changed)
                watcher.subscribe_errors(self._dispatcher.publish_error)
                watcher.start()
            with self._build_lock:
                volumes = self._volumes()
                self._built_from = _versions(volumes)
                self._apply(self._build(volumes, self._dirs[0]))
        except BaseException as exc:
            failure = exc
        if failure is not None:
            self.stop()
            error = outward(failure)  # the frames and exceptions below hold the secrets
            del failure  # not left in this frame's locals either
            raise error
        return self

    def stop(self) -> None:
        """Stop watching. :attr:`current` stays readable. Safe to call more than once."""
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        for watcher in self._watchers:
            watcher.stop()
        self._dispatcher.close()
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reading ---------------------------------------------------------------------

    current = _NotStarted()
    """The latest valid model instance. A lock-free read; the instance never changes.

    Reading it before :meth:`start` raises ``RuntimeError``.
    """

    @property
    def _current(self) -> M | None:
        """The instance in force, or ``None`` before the first build."""
        current: M | None = vars(self).get("current")
        return current

    @property
    def version(self) -> int:
        """1 for the first instance, +1 for every applied change; 0 before :meth:`start`."""
        return self._version

    @property
    def model(self) -> type[M]:
        """The settings class."""
        return self._model

    @property
    def secrets_dirs(self) -> tuple[str, ...]:
        """The watched secrets directories, absolute, in precedence order (last wins)."""
        return self._dirs

    @property
    def last_error(self) -> SecretWatchError | None:
        """Why the secrets' current content is not in use, or ``None`` when it is.

        A model that did not validate (a :class:`ValidationError`, whose ``errors()`` list
        the fields), or a directory whose version could not be read.
        """
        error = self._rejections.last_error
        for watcher in self._watchers:
            error = error or watcher.last_error
        return error

    @property
    def running(self) -> bool:
        """Whether it is started and not stopped."""
        return self._state == "running"

    def __repr__(self) -> str:
        return (
            f"LiveSettings(model={self._model.__name__}, secrets_dir={list(self._dirs)!r}, "
            f"version={self._version}, state={self._state!r})"
        )

    # -- following changes -----------------------------------------------------------

    def subscribe(
        self, callback: Callable[[M, M], object], *, fields: Collection[str] | None = None
    ) -> Subscription[Any]:
        """Call ``callback(old, new)`` after each applied change (only those of ``fields``).

        ``fields`` are names of the model's fields (not file names or aliases); a change
        of a nested model's content is a change of its field. Callbacks run on a
        secretwatch worker thread, one change at a time, in order. An exception in a
        callback, of any kind (``SystemExit`` too), is logged by its type and where it was
        raised (``secretwatch.callback_failed``) and affects nothing else.
        """
        return self._dispatcher.on_change(
            callback, self._fields(fields), call=lambda update: callback(update.old, update.new)
        )

    def subscribe_errors(
        self, callback: Callable[[SecretWatchError], object]
    ) -> Subscription[SecretWatchError]:
        """Call ``callback(error)`` when a version is rejected (model or volume)."""
        return self._dispatcher.on_error(callback)

    def wait_for_change(
        self, timeout: float | None = None, *, since: int | None = None
    ) -> M | None:
        """Block until a change is applied; return the new instance, or ``None`` on timeout.

        Waits for a :attr:`version` newer than ``since`` (default: the current one); pass
        the version seen before rotating to not miss a change applied before the call.
        Also returns ``None`` when stopped.
        """
        with self._changed:
            version = self._version if since is None else since
            self._changed.wait_for(
                lambda: self._version > version or self._state == "stopped", timeout
            )
            return self._current if self._version > version else None

    async def changes(self, *, fields: Collection[str] | None = None) -> AsyncGenerator[M, None]:
        """Yield each new instance applied after iteration starts (asyncio), until stopped.

        Examples:
            >>> async def follow(live):
            ...     async for settings in live.changes(fields={"password"}):
            ...         await reconnect(settings.password)
        """
        async for update in self._dispatcher.stream(self._fields(fields)):
            yield update.new

    def reload(self) -> M:
        """Re-read every directory and rebuild the model now; return the instance in force.

        Also picks up a changed environment or dotenv file. A model that is not valid is
        rejected as for a rotation (:attr:`last_error`); this does not raise for it. A Ctrl-C
        on the main thread is raised as by :meth:`start`.
        """
        if self._state != "running":
            raise RuntimeError(f"reload() needs a running LiveSettings (this one is {self._state})")
        try:
            for watcher in self._watchers:
                watcher.reload()
            self._rebuild(self._dirs[0], forced=True)
            return self.current
        except BaseException as exc:  # a Ctrl-C, say: without the frames below reload()
            failure = exc
        error = outward(failure)
        del failure  # not left in this frame's locals either
        raise error

    def _fields(self, fields: Collection[str] | None) -> Collection[str] | None:
        if fields is None:
            return None
        if isinstance(fields, str):
            raise TypeError("fields must be a collection of field names, not one string")
        unknown = set(fields) - set(self._model.model_fields)
        if unknown:
            known = ", ".join(sorted(self._model.model_fields))
            raise ValueError(f"{self._model.__name__} has no field {sorted(unknown)}: {known}")
        return fields

    # -- the pipeline: volume change -> build -> swap -> notify ------------------------

    def _volume_changed(self, change: Change) -> None:
        self._rebuild(change.new.path)

    def _volumes(self) -> list[Snapshot]:
        return [watcher.snapshot for watcher in self._watchers]

    def _rebuild(self, path: str, *, forced: bool = False) -> None:
        with self._build_lock:
            volumes = self._volumes()
            versions = _versions(volumes)
            if self._state != "running" or self._current is None:
                return
            if versions == self._built_from and not forced:
                return  # an earlier build saw these versions already
            try:
                candidate = self._build(volumes, path)
            except SecretWatchError as exc:
                self._built_from = versions
                # the same versions and the same reason: reported already (a forced rebuild
                # may fail for another reason, from the environment)
                self._rejections.reject(exc, f"{versions}: {exc.message}", kept=self._version)
                return
            self._built_from = versions
            if _equal(candidate, self._current):  # back to the content in force
                self._rejections.clear(recovered=self._version)
            else:
                self._apply(candidate)

    def _build(self, volumes: list[Snapshot], path: str) -> M:
        model, shadows = build_model(
            self._model, volumes, self._init_kwargs, self._options, path=path
        )
        self._shadow_warnings.report(shadows)
        return model

    def _apply(self, new: M) -> None:
        with self._lock, self._changed:
            old = self._current
            if old is not None and self._state != "running":
                return  # nothing is applied after stop()
            vars(self)["current"] = new  # what readers see: it shadows _NotStarted
            self._version += 1
            version = self._version
            self._changed.notify_all()
        self._rejections.clear()
        name = self._model.__name__
        if old is None:
            _log.info(
                "secretwatch.settings_loaded",
                model=name,
                settings_version=version,
                secrets_dir=self._dirs,
            )
            return
        fields = frozenset(
            field
            for field in type(new).model_fields
            if not _equal(getattr(old, field), getattr(new, field))
        )
        _log.info(
            "secretwatch.settings_changed",
            model=name,
            settings_version=version,
            fields=sorted(fields),
        )
        self._dispatcher.publish_change(_Update(old, new, version, fields))


def watch_settings(
    model: type[M],
    *,
    secrets_dir: SecretsDir | None = None,
    watch_options: WatchOptions | None = None,
    **model_kwargs: Any,
) -> LiveSettings[M]:
    """Build ``model`` from its secrets directories and keep it current; a started LiveSettings.

    Examples:
        >>> live = secretwatch.watch_settings(Db)  # doctest: +SKIP
        >>> live.current.password.get_secret_value()  # doctest: +SKIP
    """
    return LiveSettings(
        model, secrets_dir=secrets_dir, watch_options=watch_options, **model_kwargs
    ).start()


def _equal(new: object, old: object) -> bool:
    try:
        return bool(new == old)
    except BaseException as exc:  # a field type whose comparison fails: take it as a change
        if passed_on(exc):
            raise
        return False


def _versions(volumes: list[Snapshot]) -> tuple[int, ...]:
    return tuple(volume.version for volume in volumes)
