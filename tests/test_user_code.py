"""User code that raises anything at all (``SystemExit``, ``KeyboardInterrupt``,
``GeneratorExit``, a ``BaseException`` of its own): a decoder's, validator's or settings
model's failure rejects the version as an ``Exception`` does, a callback's is logged, and
nothing raised out of an entry point carries frames or chained exceptions that hold values.

The one exception passed on is a ``KeyboardInterrupt`` on the main thread, where a Ctrl-C
lands: it is raised again, new, from the entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings
from structlog.testing import LogCapture

import secretwatch
from secretwatch import DecodeError, SecretWatcher, ValidationError
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, Recorder, events

CANARY = "CANARY-user-code-90f4"
BAD = {"username": "app", "password": f"bad-{CANARY}"}
GOOD = {"username": "app", "password": "good"}
PACKAGE = str(Path(secretwatch.__file__).parent)


class Custom(BaseException):
    """A BaseException of the user's own."""


KINDS = [SystemExit, KeyboardInterrupt, GeneratorExit, Custom]
NOT_INTERRUPTS = [SystemExit, GeneratorExit, Custom]


def raiser(kind: type[BaseException], *, on_main: bool = True) -> Callable[[bytes], str]:
    """A decoder that raises ``kind`` (quoting the value) on a bad value; with
    ``on_main=False`` only off the main thread."""

    def decode(data: bytes) -> str:
        on_main_thread = threading.current_thread() is threading.main_thread()
        if data.startswith(b"bad") and (on_main or not on_main_thread):
            raise kind(data.decode())
        return data.decode()

    return decode


def validator(kind: type[BaseException]) -> Callable[[secretwatch.Snapshot], None]:
    def validate(snapshot: secretwatch.Snapshot) -> None:
        if snapshot["password"].startswith("bad"):
            raise kind(str(snapshot["password"]))

    return validate


def settings_model(kind: type[BaseException]) -> type[BaseSettings]:
    class Db(BaseSettings):
        password: SecretStr

        @field_validator("password")
        @classmethod
        def _not_bad(cls, value: SecretStr) -> SecretStr:
            if value.get_secret_value().startswith("bad"):
                raise kind(value.get_secret_value())
            return value

    return Db


def holds_canary(value: object) -> bool:
    if isinstance(value, str | bytes):
        return CANARY in str(value) if isinstance(value, str) else CANARY.encode() in value
    try:
        return CANARY in repr(value)
    except Exception:
        return False


def reaches_canary(value: object, depth: int = 4) -> bool:
    """Whether the canary is in ``value`` or in what it holds: items, attributes (a few
    levels deep), and whatever an exception reaches (see :func:`exception_reaches_canary`)."""
    if isinstance(value, BaseException):
        return exception_reaches_canary(value, set(), raised=False)
    if isinstance(value, str | bytes) or depth == 0:
        return holds_canary(value)
    if isinstance(value, dict):
        parts: list[object] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        parts = list(value)
    else:
        slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
        parts = [getattr(value, name, None) for name in slots]
        parts += list(getattr(value, "__dict__", {}).values())
    return holds_canary(value) or any(reaches_canary(part, depth - 1) for part in parts)


def exception_reaches_canary(exc: BaseException, seen: set[int], *, raised: bool) -> bool:
    """Whether the canary is in ``exc``'s arguments, in its frames' locals, in an exception
    one of them holds (and so on), or in an exception it chains. The locals of the frames
    of the exception ``raised`` by an entry point are checked by their ``repr`` (``self``
    there is the watcher, which holds the values by design); those of any other exception
    reached, through their items and attributes too: nothing below the entry point may
    stay reachable."""
    if id(exc) in seen:
        return False
    seen.add(id(exc))
    if holds_canary(exc.args):
        return True
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, BaseException):
                if exception_reaches_canary(value, seen, raised=False):
                    return True
            elif holds_canary(value) if raised else reaches_canary(value):
                return True
        tb = tb.tb_next
    chained = (exc.__context__, exc.__cause__)
    return any(c is not None and exception_reaches_canary(c, seen, raised=False) for c in chained)


def assert_scrubbed(exc: BaseException, entry: str) -> None:
    """No frame below the entry point, no chained exception, and nothing the exception
    reaches (its arguments, its frames' locals, an exception one of them holds and what
    that one's frames hold...) holds the canary."""
    frames: list[types.FrameType] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    ours = [f.f_code.co_name for f in frames if f.f_code.co_filename.startswith(PACKAGE)]
    assert ours[-1:] == [entry], ours
    assert len(ours) <= 2, ours  # watch() -> start(), at most
    for frame in frames:
        for name, value in frame.f_locals.items():
            assert not holds_canary(value), f"{frame.f_code.co_name}: {name}"
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert not exception_reaches_canary(exc, set(), raised=True)


def assert_rejected_once(logs: LogCapture, error: secretwatch.SecretWatchError) -> None:
    (rejected,) = events(logs, "secretwatch.rejected")
    assert rejected["error_type"] == type(error).__name__
    assert events(logs, "secretwatch.internal_error") == []
    assert events(logs, "secretwatch.callback_failed") == []
    assert CANARY not in repr(logs.entries)
    assert CANARY not in str(error)
    assert error.__traceback__ is None
    assert error.__context__ is None


# -- on a worker thread, during a rotation ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_decoder_raising_anything_rejects_the_version(
    volume: AtomicVolume, logs: LogCapture, kind: type[BaseException]
) -> None:
    """A decoder that raises ``kind`` during a rotation: a DecodeError by type only, with
    last_error, one rejected event and the error callback; the next good version applies."""
    volume.write(GOOD)
    decoders = {"password": raiser(kind)}
    with secretwatch.watch(volume.path, decoders=decoders, debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write(BAD)
        error = recorder.error()
        assert isinstance(error, DecodeError)
        assert error.key == "password"
        assert f"{kind.__name__} (message withheld" in error.message
        assert secrets.last_error is error
        assert secrets["password"] == "good"
        assert_rejected_once(logs, error)
        volume.write({**GOOD, "password": "better"})
        assert recorder.change().new["password"] == "better"
        assert secrets.last_error is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_validator_raising_anything_rejects_the_version(
    volume: AtomicVolume, logs: LogCapture, kind: type[BaseException]
) -> None:
    """A validator that raises ``kind`` during a rotation rejects as an Exception does."""
    volume.write(GOOD)
    with secretwatch.watch(volume.path, validate=validator(kind), debounce=0) as secrets:
        recorder = Recorder(secrets)
        volume.write(BAD)
        error = recorder.error()
        assert isinstance(error, ValidationError)
        assert f"{kind.__name__} (message withheld" in error.message
        assert secrets.last_error is error
        assert_rejected_once(logs, error)
        volume.write({**GOOD, "password": "better"})
        assert recorder.change().new["password"] == "better"


@pytest.mark.parametrize("kind", KINDS)
def test_a_callback_raising_anything_is_logged(
    volume: AtomicVolume, logs: LogCapture, kind: type[BaseException]
) -> None:
    """A callback that raises ``kind``: logged by type and place, never its message; the
    other subscribers and later changes are not affected."""

    def callback(change: secretwatch.Change) -> None:
        raise kind(str(change.new["password"]))

    with secretwatch.watch(volume.path, debounce=0) as secrets:
        secrets.subscribe(callback)
        recorder = Recorder(secrets)
        for password in (f"second-{CANARY}", "third"):
            volume.write({**GOOD, "password": password})
            assert recorder.change().new["password"] == password
    failed = events(logs, "secretwatch.callback_failed")
    assert [entry["error_type"] for entry in failed][:1] == [kind.__name__]
    assert CANARY not in repr(logs.entries)


@pytest.mark.parametrize("kind", KINDS)
def test_a_settings_validator_raising_anything_rejects_the_version(
    tmp_path: Path, logs: LogCapture, kind: type[BaseException]
) -> None:
    """A model's validator that raises ``kind`` on a rotation: a ValidationError with
    last_error, one rejected event and the error callback; the next good version applies."""
    volume = AtomicVolume(tmp_path / "db")
    volume.write({"password": "good"})
    model = settings_model(kind)
    options: secretwatch.WatchOptions = {"debounce": 0}
    with secretwatch.watch_settings(model, secrets_dir=volume.path, watch_options=options) as live:
        errors: queue.SimpleQueue[secretwatch.SecretWatchError] = queue.SimpleQueue()
        changes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        live.subscribe_errors(errors.put)
        live.subscribe(lambda old, new: changes.put(new))
        volume.write({"password": f"bad-{CANARY}"})
        error = errors.get(timeout=TIMEOUT)
        assert isinstance(error, ValidationError)
        assert live.last_error is error
        assert kind.__name__ in error.message
        assert_rejected_once(logs, error)
        volume.write({"password": "better"})
        assert changes.get(timeout=TIMEOUT).password.get_secret_value() == "better"


# -- at start(), on the main thread ---------------------------------------------------------


@pytest.mark.parametrize("kind", NOT_INTERRUPTS)
@pytest.mark.parametrize("entry", ["start", "watch"])
def test_a_decoder_raising_anything_at_start_is_a_scrubbed_decode_error(
    volume: AtomicVolume, kind: type[BaseException], entry: str
) -> None:
    """start() (and watch()): the first version is rejected; the DecodeError has no frames
    below the entry point and no chained exception, and no local holds the value."""
    volume.write(BAD)
    with pytest.raises(DecodeError) as info:
        start(entry, volume.path, decoders={"password": raiser(kind)})
    assert_scrubbed(info.value, "start")


@pytest.mark.parametrize("kind", NOT_INTERRUPTS)
def test_a_validator_raising_anything_at_start_is_a_scrubbed_validation_error(
    volume: AtomicVolume, kind: type[BaseException]
) -> None:
    """As for a decoder: the validator's failure, scrubbed."""
    volume.write(BAD)
    with pytest.raises(ValidationError) as info:
        start("start", volume.path, validate=validator(kind))
    assert_scrubbed(info.value, "start")


@pytest.mark.parametrize("user_code", ["decoder", "validator"])
@pytest.mark.parametrize("entry", ["start", "watch"])
def test_ctrl_c_at_start_is_passed_on_scrubbed(
    volume: AtomicVolume, user_code: str, entry: str
) -> None:
    """A KeyboardInterrupt on the main thread (a Ctrl-C) is passed on: a new one, without
    frames below the entry point or chained exceptions; the watcher is stopped."""
    volume.write(BAD)
    made: list[SecretWatcher] = []
    options: dict[str, Any] = (
        {"decoders": {"password": raiser(KeyboardInterrupt)}}
        if user_code == "decoder"
        else {"validate": validator(KeyboardInterrupt)}
    )
    with pytest.raises(KeyboardInterrupt) as info:
        start(entry, volume.path, made=made, **options)
    assert_scrubbed(info.value, "start")
    assert info.value.args == ()
    if made:
        assert not made[0].running


def test_a_real_ctrl_c_in_a_decoder_at_start_is_passed_on_scrubbed(volume: AtomicVolume) -> None:
    """A SIGINT delivered while a decoder runs at start(): the KeyboardInterrupt Python
    raises is passed on, scrubbed, and the watcher is stopped."""

    def decode(data: bytes) -> str:
        if data.startswith(b"bad"):
            signal.raise_signal(signal.SIGINT)  # Python raises KeyboardInterrupt in here
            threading.Event().wait(TIMEOUT)
        return data.decode()

    volume.write(BAD)
    watcher = SecretWatcher(volume.path, decoders={"password": decode})
    with pytest.raises(KeyboardInterrupt) as info:
        watcher.start()
    assert_scrubbed(info.value, "start")
    assert not watcher.running


@pytest.mark.parametrize("kind", KINDS)
def test_a_settings_validator_raising_anything_at_start_is_scrubbed(
    tmp_path: Path, kind: type[BaseException]
) -> None:
    """watch_settings(): a ValidationError (a KeyboardInterrupt, for Ctrl-C), without frames
    below LiveSettings.start or chained exceptions."""
    volume = AtomicVolume(tmp_path / "db")
    volume.write({"password": f"bad-{CANARY}"})
    expected = KeyboardInterrupt if kind is KeyboardInterrupt else ValidationError
    with pytest.raises(expected) as info:
        secretwatch.watch_settings(settings_model(kind), secrets_dir=volume.path)
    assert_scrubbed(info.value, "start")


def test_ctrl_c_in_reload_is_passed_on_scrubbed(volume: AtomicVolume, logs: LogCapture) -> None:
    """reload() on the main thread: a Ctrl-C in a decoder is passed on, scrubbed; it is not
    a rejection, and the watcher keeps its snapshot and keeps running."""
    volume.write(GOOD)
    options: dict[str, Any] = {"polling": True, "poll_interval": 3600, "resync_interval": None}
    decoders = {"password": raiser(KeyboardInterrupt)}
    with SecretWatcher(volume.path, decoders=decoders, **options) as secrets:
        volume.write(BAD)
        with pytest.raises(KeyboardInterrupt) as info:
            secrets.reload()
        assert_scrubbed(info.value, "reload")
        assert secrets.running
        assert secrets["password"] == "good"
        assert secrets.last_error is None
        volume.write({**GOOD, "password": "better"})
        assert secrets.reload()["password"] == "better"
    assert events(logs, "secretwatch.internal_error") == []


def test_ctrl_c_in_live_settings_reload_is_passed_on_scrubbed(tmp_path: Path) -> None:
    """LiveSettings.reload() on the main thread: a Ctrl-C in the model's validator."""
    volume = AtomicVolume(tmp_path / "db")
    volume.write({"password": "good"})
    options: secretwatch.WatchOptions = {"polling": True, "poll_interval": 3600}
    model = settings_model(KeyboardInterrupt)
    with secretwatch.watch_settings(model, secrets_dir=volume.path, watch_options=options) as live:
        volume.write({"password": f"bad-{CANARY}"})
        with pytest.raises(KeyboardInterrupt) as info:
            live.reload()
        assert_scrubbed(info.value, "reload")
        assert live.running
        assert live.current.password.get_secret_value() == "good"  # type: ignore[attr-defined]


def test_a_decoder_raising_ctrl_c_off_the_main_thread_rejects(
    volume: AtomicVolume, logs: LogCapture
) -> None:
    """reload() called on another thread: a KeyboardInterrupt there is no Ctrl-C (Python
    delivers those to the main thread), so it is the decoder's failure."""
    volume.write(GOOD)
    options: dict[str, Any] = {"polling": True, "poll_interval": 3600, "resync_interval": None}
    decoders = {"password": raiser(KeyboardInterrupt, on_main=False)}
    with SecretWatcher(volume.path, decoders=decoders, **options) as secrets:
        volume.write(BAD)
        result: queue.SimpleQueue[object] = queue.SimpleQueue()
        thread = threading.Thread(target=lambda: result.put(_reload(secrets)))
        thread.start()
        outcome = result.get(timeout=TIMEOUT)
        thread.join(TIMEOUT)
        assert outcome == "good"
        assert isinstance(secrets.last_error, DecodeError)
        assert_rejected_once(logs, secrets.last_error)


def _reload(secrets: SecretWatcher) -> object:
    try:
        return secrets.reload()["password"]
    except BaseException as exc:
        return exc


def start(entry: str, path: Path, made: list[SecretWatcher] | None = None, **options: Any) -> None:
    """Start a watcher through ``entry`` (``start`` or ``watch``); stop it if it started."""
    if entry == "watch":
        secretwatch.watch(path, **options).stop()
        return
    watcher = SecretWatcher(path, **options)
    if made is not None:
        made.append(watcher)
    watcher.start().stop()


async def test_an_exception_in_a_changes_loop_is_the_caller_s(volume: AtomicVolume) -> None:
    """The body of ``async for ... in changes()`` is the caller's code: what it raises
    reaches the caller unchanged, closing the stream ends its subscription, and the
    watcher goes on delivering to others."""
    with secretwatch.watch(volume.path, debounce=0) as secrets:
        recorder = Recorder(secrets)
        started = asyncio.Event()

        async def consume() -> None:
            async with contextlib.aclosing(secrets.changes()) as stream:
                iterator = aiter(stream)
                pending = asyncio.ensure_future(anext(iterator))
                started.set()
                change = await pending
                raise Custom(str(change.new["password"]))

        consumer = asyncio.ensure_future(consume())
        await asyncio.wait_for(started.wait(), TIMEOUT)
        await asyncio.sleep(0)  # one loop turn: the stream subscribes (not a wait)
        await asyncio.to_thread(volume.write, {**GOOD, "password": "second"})
        with pytest.raises(Custom):
            await asyncio.wait_for(consumer, TIMEOUT)
        others = [s.callback for s in secrets._dispatcher._changes]
        assert others == [recorder.changes.put]  # the stream's subscription has ended
        await asyncio.to_thread(volume.write, {**GOOD, "password": "third"})
        assert (await asyncio.to_thread(recorder.change)).new["password"] == "second"
        assert (await asyncio.to_thread(recorder.change)).new["password"] == "third"
