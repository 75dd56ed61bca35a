"""Live settings: pydantic-settings models that follow rotation and keep the last valid one."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from pydantic import AliasChoices, BaseModel, Field, SecretBytes, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from structlog.testing import LogCapture

import secretwatch
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, events

CANARY = "CANARY-5e1d-settings-do-not-leak"
FAST: secretwatch.WatchOptions = {"debounce": 0}

M = TypeVar("M", bound=BaseSettings)


class ServiceKey(BaseModel):
    clientid: str
    clientsecret: SecretStr
    url: str


class Db(BaseSettings):
    password: SecretStr
    user: str = "app"
    port: int = 5432


class WithKey(BaseSettings):
    service_key: ServiceKey
    token: SecretBytes


class Pairs(Generic[M]):
    """``(old, new)`` pairs from a LiveSettings, in a queue to wait on."""

    def __init__(self, live: secretwatch.LiveSettings[M], **subscribe: Any):
        self.queue: queue.SimpleQueue[tuple[M, M]] = queue.SimpleQueue()
        self.errors: queue.SimpleQueue[secretwatch.SecretWatchError] = queue.SimpleQueue()
        live.subscribe(lambda old, new: self.queue.put((old, new)), **subscribe)
        live.subscribe_errors(self.errors.put)

    def next(self) -> tuple[M, M]:
        try:
            return self.queue.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no settings change within {TIMEOUT} s")

    def error(self) -> secretwatch.SecretWatchError:
        try:
            return self.errors.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no rejection within {TIMEOUT} s")


@pytest.fixture
def db_volume(tmp_path: Path) -> AtomicVolume:
    vol = AtomicVolume(tmp_path / "db-secret")
    vol.write({"password": "first", "port": "5432"})
    return vol


@pytest.fixture
def live(db_volume: AtomicVolume) -> Iterator[secretwatch.LiveSettings[Db]]:
    with secretwatch.watch_settings(Db, secrets_dir=db_volume.path, watch_options=FAST) as settings:
        yield settings


@pytest.mark.smoke
def test_the_contract_example(tmp_path: Path) -> None:
    """The issue's example, with secrets_dir taken from the model's own config."""
    vol = AtomicVolume(tmp_path / "db-secret")
    vol.write({"password": "s3cret"})

    class Db(BaseSettings):
        model_config = SettingsConfigDict(secrets_dir=vol.path)
        password: SecretStr
        user: str = "app"

    with secretwatch.watch_settings(Db) as live:
        assert isinstance(live, secretwatch.LiveSettings)
        assert type(live.current) is Db
        assert live.current.password.get_secret_value() == "s3cret"
        assert live.current.user == "app"
        assert live.version == 1
        assert live.last_error is None
        assert live.secrets_dirs == (str(vol.path),)


@pytest.mark.smoke
def test_typed_fields_and_one_callback_per_rotation(
    live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume, logs: LogCapture
) -> None:
    """Behaviour 1: a valid rotation gives a new instance and one (old, new) callback."""
    pairs = Pairs(live)
    first = live.current
    assert first.port == 5432
    db_volume.write({"password": "second", "port": "6543"})
    old, new = pairs.next()
    assert old is first
    assert new is live.current
    assert new.password.get_secret_value() == "second"
    assert new.port == 6543
    assert live.version == 2
    assert pairs.queue.empty()
    (changed,) = events(logs, "secretwatch.settings_changed")
    assert changed["fields"] == ["password", "port"]
    assert changed["model"] == "Db"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"port": "5432"}, ("password", "missing")),
        ({"password": "x", "port": CANARY}, ("port", "int_parsing")),
    ],
    ids=["missing key", "wrong type"],
)
def test_invalid_rotation_keeps_the_last_valid_instance(
    live: secretwatch.LiveSettings[Db],
    db_volume: AtomicVolume,
    logs: LogCapture,
    payload: dict[str, str],
    expected: tuple[str, str],
) -> None:
    """Behaviour 2: rejected, with fields and no values; the next valid rotation applies."""
    field, error_type = expected
    pairs = Pairs(live)
    first = live.current
    db_volume.write(payload)
    error = pairs.error()
    assert isinstance(error, secretwatch.ValidationError)
    assert live.current is first
    assert live.last_error is error
    assert [(e["loc"], e["type"]) for e in error.errors()] == [((field,), error_type)]
    assert all("input" not in e for e in error.errors())
    assert f"{field}:" in error.message
    assert error.path == str(db_volume.path)
    (rejected,) = events(logs, "secretwatch.rejected")
    assert rejected["settings_version"] == 1
    assert CANARY not in repr(rejected) + repr(error.errors()) + str(error)

    db_volume.write({"password": "third"})
    old, new = pairs.next()
    assert (old, new) == (first, live.current)
    assert new.password.get_secret_value() == "third"
    assert live.last_error is None
    assert pairs.queue.empty()  # the rejected version gave no callback


def test_bad_json_is_rejected_naming_key_and_field(tmp_path: Path, logs: LogCapture) -> None:
    """Behaviour 2 for JSON: the error names the key, the field and the place, not the text."""
    vol = AtomicVolume(tmp_path / "key")
    key = {"clientid": "id", "clientsecret": "s", "url": "https://auth"}
    vol.write({"service_key": json.dumps(key), "token": "t"})
    with secretwatch.watch_settings(WithKey, secrets_dir=vol.path, watch_options=FAST) as live:
        pairs = Pairs(live)
        vol.write({"service_key": '{"clientsecret": "' + CANARY, "token": "t"})
        error = pairs.error()
        assert isinstance(error, secretwatch.DecodeError)
        assert error.key == "service_key"
        assert "'service_key' is not valid JSON" in error.message
        assert CANARY not in "".join(traceback.format_exception(error))
        assert live.current.service_key.clientid == "id"
        assert len(events(logs, "secretwatch.rejected")) == 1


def test_nested_json_model(tmp_path: Path) -> None:
    """A key holding JSON (an AI Core service key) parses into a nested model field."""
    vol = AtomicVolume(tmp_path / "key")
    key = {"clientid": "id", "clientsecret": "s1", "url": "https://auth"}
    vol.write({"service_key": json.dumps(key), "token": "t"})
    with secretwatch.watch_settings(WithKey, secrets_dir=vol.path, watch_options=FAST) as live:
        pairs = Pairs(live)
        assert live.current.service_key.clientsecret.get_secret_value() == "s1"
        assert live.current.token.get_secret_value() == b"t"
        vol.write({"service_key": json.dumps({**key, "clientsecret": "s2"}), "token": "t"})
        _, new = pairs.next()
        assert new.service_key.clientsecret.get_secret_value() == "s2"


def test_first_load_that_fails_raises(db_volume: AtomicVolume) -> None:
    """Behaviour 3: nothing valid to keep, so watch_settings raises, naming the field."""
    db_volume.write({"port": CANARY})
    with pytest.raises(secretwatch.ValidationError) as info:
        secretwatch.watch_settings(Db, secrets_dir=db_volume.path)
    error = info.value
    assert "Db settings from" in error.message
    assert {e["loc"] for e in error.errors()} == {("password",), ("port",)}
    assert error.__cause__ is None
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert frames[-1] == "start"  # no frames below, whose locals hold the secrets' bytes
    assert CANARY not in "".join(traceback.format_exception(error)) + repr(error.errors())


def test_model_without_secrets_dir_is_refused() -> None:
    with pytest.raises(ValueError, match="Db has no secrets_dir"):
        secretwatch.watch_settings(Db)


def test_list_of_secrets_dirs_later_wins_and_each_is_watched(tmp_path: Path) -> None:
    """A list of directories, the later one winning, as pydantic-settings does."""
    base = AtomicVolume(tmp_path / "base")
    override = AtomicVolume(tmp_path / "override")
    base.write({"password": "base", "user": "base-user"})
    override.write({"password": "override"})
    dirs = [base.path, override.path]
    with secretwatch.watch_settings(Db, secrets_dir=dirs, watch_options=FAST) as live:
        pairs = Pairs(live)
        assert live.current.password.get_secret_value() == "override"
        assert live.current.user == "base-user"
        base.write({"password": "base-2", "user": "base-user-2"})
        _, new = pairs.next()
        assert (new.password.get_secret_value(), new.user) == ("override", "base-user-2")
        override.write({"password": "override-2"})
        _, new = pairs.next()
        assert new.password.get_secret_value() == "override-2"
        assert live.secrets_dirs == tuple(map(str, dirs))


def test_environment_and_init_values_win_over_the_secret(
    db_volume: AtomicVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precedence is pydantic-settings': init > environment > dotenv > secrets."""
    db_volume.write({"password": "from-file", "user": "file-user", "port": "1"})
    monkeypatch.setenv("USER", "env-user")
    with secretwatch.watch_settings(
        Db, secrets_dir=db_volume.path, watch_options=FAST, port=2
    ) as live:
        pairs = Pairs(live)
        assert live.current.user == "env-user"
        assert live.current.port == 2
        assert live.current.password.get_secret_value() == "from-file"
        db_volume.write({"password": "rotated", "user": "file-user-2", "port": "3"})
        _, new = pairs.next()
        assert (new.user, new.port, new.password.get_secret_value()) == ("env-user", 2, "rotated")


def test_dotenv_file_and_underscore_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-settings' own options (``_env_file``, ``_env_prefix``) work as in ``Db(...)``."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"app_password": "p", "password": "no prefix: not read", "port": "1"})
    dotenv = tmp_path / ".env"
    dotenv.write_text("APP_USER=dotenv-user\n")
    monkeypatch.setenv("APP_PORT", "7")
    options: dict[str, Any] = {"_env_file": dotenv, "_env_prefix": "APP_"}
    with secretwatch.watch_settings(Db, secrets_dir=vol.path, **options) as live:
        assert live.current == Db(_secrets_dir=vol.path, **options)
        assert live.current.password.get_secret_value() == "p"
        assert (live.current.user, live.current.port) == ("dotenv-user", 7)


class Aliased(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="my_")
    password: SecretStr = Field(validation_alias=AliasChoices("db_password", "pw"))
    api_key: str = "none"
    flags: dict[str, int] = {}


class Reordered(BaseSettings):
    """Secrets before the environment: the model's own hook decides."""

    password: str = "unset"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, file_secret_settings, env_settings


@pytest.mark.parametrize(
    ("model", "files"),
    [
        (Db, {"PASSWORD": " padded \n", "Port": "1"}),  # case-insensitive, stripped
        (Aliased, {"pw": "p", "MY_API_KEY": "k", "my_flags": '{"a": 1}', "other": "x"}),
        (Reordered, {"password": "from-file"}),
    ],
    ids=["case and whitespace", "aliases, prefix, JSON dict", "customised sources"],
)
def test_same_model_as_pydantic_settings_builds_from_disk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: type[BaseSettings],
    files: dict[str, str],
) -> None:
    """A model is built exactly as pydantic-settings builds it, only from the snapshot."""
    monkeypatch.setenv("PASSWORD", "from-env")
    vol = AtomicVolume(tmp_path / "v")
    vol.write(files)
    with secretwatch.watch_settings(model, secrets_dir=vol.path) as live:
        assert live.current == model(_secrets_dir=vol.path)


def test_rotation_that_leaves_the_model_equal_is_no_change(
    live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume
) -> None:
    """A key no field reads (even one that is not text) changes nothing; nor does a revert."""
    pairs = Pairs(live)
    first = live.current
    seen = live.version
    db_volume.write({"password": "first", "port": "5432", "ca.p12": b"\xff\x00binary"})
    db_volume.write({"port": "5432"})  # rejected: no password
    pairs.error()
    db_volume.write({"password": "first", "port": "5432"})  # back to the content in force
    db_volume.write({"password": "marker", "port": "5432"})
    _, new = pairs.next()  # the first change that reached subscribers
    assert new.password.get_secret_value() == "marker"
    assert live.version == seen + 1
    assert first.password.get_secret_value() == "first"


def test_key_that_is_not_text_rejects_when_a_field_reads_it(
    live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume
) -> None:
    pairs = Pairs(live)
    db_volume.write({"password": b"\xff" + CANARY.encode(), "port": "5432"})
    error = pairs.error()
    assert isinstance(error, secretwatch.DecodeError)
    assert error.key == "password"
    assert "not valid UTF-8" in error.message
    assert live.current.password.get_secret_value() == "first"


def test_validator_messages_are_withheld(tmp_path: Path) -> None:
    """A field validator's message may quote the value: it is not reported."""

    class Checked(BaseSettings):
        token: str

        @field_validator("token")
        @classmethod
        def looks_right(cls, value: str) -> str:
            if not value.startswith("tok-"):
                raise ValueError(f"{value} does not start with tok-")
            return value

    vol = AtomicVolume(tmp_path / "v")
    vol.write({"token": CANARY})
    with pytest.raises(secretwatch.ValidationError) as info:
        secretwatch.watch_settings(Checked, secrets_dir=vol.path)
    (detail,) = info.value.errors()
    assert detail["type"] == "value_error"
    assert "withheld" in detail["msg"]
    assert CANARY not in str(info.value)


def test_secret_values_never_leak(
    tmp_path: Path, logs: LogCapture, caplog: pytest.LogCaptureFixture
) -> None:
    """Behaviour 4: the canary shows in no log, error, traceback or repr."""
    vol = AtomicVolume(tmp_path / "v")
    key = {"clientid": CANARY, "clientsecret": CANARY, "url": CANARY}
    vol.write({"service_key": json.dumps(key), "token": CANARY})
    texts: list[str] = []
    with secretwatch.watch_settings(WithKey, secrets_dir=vol.path, watch_options=FAST) as live:

        def fail(old: WithKey, new: WithKey) -> None:
            token = new.token.get_secret_value()  # a local that holds the value
            raise RuntimeError(f"callback failed with {token!r}")

        live.subscribe(fail)  # before the recorder: it has run when the recorder is called
        pairs = Pairs(live)
        errors = []
        for bad in [
            {"service_key": json.dumps({**key, "url": 1}), "token": CANARY},  # wrong type
            {"service_key": json.dumps(key)},  # missing token
            {"service_key": "{" + CANARY, "token": CANARY},  # bad JSON
        ]:
            vol.write(bad)
            errors.append(pairs.error())  # each one before the next write: none coalesce
        vol.write({"service_key": json.dumps(key), "token": CANARY + "-2"})
        pairs.next()
        assert live.wait_for_change(TIMEOUT, since=1) is live.current
        texts += [repr(live), repr(live.current.token), repr(live.current.service_key.clientsecret)]
        texts += [repr(live.subscribe(fail))]
    texts += ["".join(traceback.format_exception(e)) + repr(e.__dict__) for e in errors]
    texts += [repr(entry) for entry in logs.entries]
    texts.append(caplog.text)
    assert len(events(logs, "secretwatch.callback_failed")) == 1
    assert not [text for text in texts if CANARY in text]


async def test_async_iteration(live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume) -> None:
    seen: list[str] = []

    async def follow() -> None:
        async for settings in live.changes(fields={"password"}):
            seen.append(settings.password.get_secret_value())
            if len(seen) == 2:
                return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)  # let the iteration start (subscribe) before writing
    for password in ["first", "second", "third"]:  # the first is not a password change
        seen_version = live.version
        db_volume.write({"password": password, "port": "1"})
        # one change at a time: writes faster than the watcher reads are coalesced
        assert await asyncio.to_thread(live.wait_for_change, TIMEOUT, since=seen_version)
    await asyncio.wait_for(task, TIMEOUT)
    assert seen == ["second", "third"]


def test_subscribe_to_some_fields(
    live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume
) -> None:
    passwords = Pairs(live, fields={"password"})
    every = Pairs(live)
    db_volume.write({"password": "first", "port": "1"})
    assert every.next()[1].port == 1
    db_volume.write({"password": "second", "port": "1"})
    assert every.next()[1].password.get_secret_value() == "second"
    _, new = passwords.next()
    assert new.password.get_secret_value() == "second"
    assert passwords.queue.empty()  # the port change was not passed on


def test_wait_for_change_and_stop(
    live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume
) -> None:
    seen = live.version
    assert live.wait_for_change(timeout=0.01) is None
    db_volume.write({"password": "second"})
    new = live.wait_for_change(TIMEOUT, since=seen)
    assert new is not None
    assert new.password.get_secret_value() == "second"
    live.stop()
    assert not live.running
    assert live.wait_for_change(TIMEOUT) is None  # returns at once when stopped
    assert live.current is new
    with pytest.raises(RuntimeError, match="stopped"):
        live.start()


def test_reload_reads_the_environment_again(
    live: secretwatch.LiveSettings[Db], monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = Pairs(live)
    monkeypatch.setenv("USER", "new-user")
    assert live.reload().user == "new-user"
    assert pairs.next()[1].user == "new-user"


def test_volume_rejections_reach_live_settings(
    live: secretwatch.LiveSettings[Db], db_volume: AtomicVolume
) -> None:
    """A version the watcher can't read is a rejection of the settings too."""
    pairs = Pairs(live)
    db_volume.write({"password": "x" * (2 * 1024 * 1024)})
    error = pairs.error()
    assert isinstance(error, secretwatch.TooLargeError)
    assert live.last_error is error
    assert live.current.password.get_secret_value() == "first"


def test_misuse_is_refused(db_volume: AtomicVolume) -> None:
    path = db_volume.path
    with pytest.raises(TypeError, match="BaseSettings"):
        secretwatch.LiveSettings(dict, secrets_dir=path)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="validates"):
        secretwatch.LiveSettings(Db, secrets_dir=path, watch_options={"validate": bool})
    with pytest.raises(TypeError, match="secrets_dir="):
        secretwatch.LiveSettings(Db, _secrets_dir=path)
    with pytest.raises(TypeError, match="_cli_parse_args"):
        secretwatch.LiveSettings(Db, secrets_dir=path, _cli_parse_args=True)
    with pytest.raises(ValueError, match="at least one"):
        secretwatch.LiveSettings(Db, secrets_dir=[])
    with pytest.raises(secretwatch.VolumeNotFoundError):
        secretwatch.watch_settings(Db, secrets_dir=Path(path) / "missing")
    with pytest.raises(RuntimeError, match="start"):
        _ = secretwatch.LiveSettings(Db, secrets_dir=path).current


def test_a_directory_named_twice_counts_where_named_last(tmp_path: Path) -> None:
    first = AtomicVolume(tmp_path / "a")
    second = AtomicVolume(tmp_path / "b")
    first.write({"password": "a"})
    second.write({"password": "b"})
    live = secretwatch.LiveSettings(Db, secrets_dir=[first.path, second.path, first.path])
    assert live.secrets_dirs == (str(second.path), str(first.path))
    with live:
        assert live.current.password.get_secret_value() == "a"


def test_a_missing_directory_is_read_when_it_appears(tmp_path: Path) -> None:
    """With ``required=False`` a directory that is not there yet counts once it appears."""
    base = AtomicVolume(tmp_path / "base")
    base.write({"password": "base"})
    later = AtomicVolume(tmp_path / "later")
    options: secretwatch.WatchOptions = {"debounce": 0, "required": False}
    dirs = [base.path, later.path]
    with secretwatch.watch_settings(Db, secrets_dir=dirs, watch_options=options) as live:
        pairs = Pairs(live)
        assert live.current.password.get_secret_value() == "base"
        assert isinstance(live.last_error, secretwatch.VolumeNotFoundError)
        later.write({"password": "later"})
        _, new = pairs.next()
        assert new.password.get_secret_value() == "later"
        assert live.last_error is None


def test_concurrent_rotations_of_several_directories_converge(tmp_path: Path) -> None:
    """Two directories rotated at once from two threads: the last build sees both."""
    first = AtomicVolume(tmp_path / "first")
    second = AtomicVolume(tmp_path / "second")
    first.write({"password": "p-0"})
    second.write({"port": "1000"})
    rounds = 50
    with secretwatch.watch_settings(
        Db, secrets_dir=[first.path, second.path], watch_options=FAST
    ) as live:
        writers = [
            threading.Thread(
                target=lambda: [first.write({"password": f"p-{i}"}) for i in range(rounds)]
            ),
            threading.Thread(
                target=lambda: [second.write({"port": str(1000 + i)}) for i in range(rounds)]
            ),
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(TIMEOUT)
        last = (f"p-{rounds - 1}", 1000 + rounds - 1)
        while True:
            seen = live.version
            current = live.current
            if (current.password.get_secret_value(), current.port) == last:
                break
            assert live.wait_for_change(TIMEOUT, since=seen) is not None, "did not converge"
        assert live.last_error is None


def locals_and_context(error: BaseException) -> str:
    """What an error reporter that records locals and chained exceptions would see."""
    report = traceback.TracebackException.from_exception(error, capture_locals=True)
    return "".join(report.format()) + repr(error.__context__) + repr(error.__cause__)


def test_kept_and_raised_errors_carry_no_context_or_frames(tmp_path: Path) -> None:
    """An error kept in last_error, or raised by start(), holds no exception or frame
    whose data quotes the value (a JSONDecodeError keeps the whole document)."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"service_key": '{"clientsecret": "' + CANARY, "token": "t"})
    with pytest.raises(secretwatch.DecodeError) as info:
        secretwatch.watch_settings(WithKey, secrets_dir=vol.path)
    assert info.value.__context__ is None
    assert CANARY not in locals_and_context(info.value)

    key = {"clientid": "id", "clientsecret": "s", "url": "u"}
    vol.write({"service_key": json.dumps(key), "token": "t"})
    with secretwatch.watch_settings(WithKey, secrets_dir=vol.path, watch_options=FAST) as live:
        pairs = Pairs(live)
        for bad in [
            {"service_key": '{"clientsecret": "' + CANARY, "token": "t"},  # bad JSON
            {"service_key": json.dumps({**key, "url": [CANARY]}), "token": "t"},  # wrong type
        ]:
            vol.write(bad)
            error = pairs.error()
            assert live.last_error is error
            assert error.__traceback__ is None
            assert error.__context__ is None
            assert CANARY not in locals_and_context(error)


def test_an_error_from_the_environment_names_no_secret_key(
    live: secretwatch.LiveSettings[Db], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment wins over the ``port`` file: a bad PORT is not blamed on the file."""
    pairs = Pairs(live)
    monkeypatch.setenv("PORT", "not-a-number")
    live.reload()
    error = pairs.error()
    assert isinstance(error, secretwatch.ValidationError)
    assert error.key is None
    assert [e["loc"] for e in error.errors()] == [("port",)]
    monkeypatch.delenv("PORT")
    assert live.reload().port == 5432  # the file's value again
    assert live.last_error is None


class Tuned(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUNED_")
    password: SecretStr
    port: int = 1
    retries: int = 1


def test_a_new_reason_for_the_same_versions_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """reload() after another bad environment change reports the new reason."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"tuned_password": "p"})
    with secretwatch.watch_settings(Tuned, secrets_dir=vol.path) as live:
        pairs = Pairs(live)
        monkeypatch.setenv("TUNED_PORT", "x")
        live.reload()
        first = pairs.error()
        monkeypatch.delenv("TUNED_PORT")
        monkeypatch.setenv("TUNED_RETRIES", "x")
        live.reload()  # the same volume version, another reason
        second = pairs.error()
    assert isinstance(first, secretwatch.ValidationError)
    assert isinstance(second, secretwatch.ValidationError)
    assert [e["loc"] for e in first.errors()] == [("port",)]
    assert [e["loc"] for e in second.errors()] == [("retries",)]
    assert live.last_error is second
    assert len(events(logs, "secretwatch.rejected")) == 2


def test_command_line_models_are_refused(db_volume: AtomicVolume) -> None:
    """A model that parses the command line would silently lose it: refused, with advice."""

    class Tool(BaseSettings):
        model_config = SettingsConfigDict(cli_parse_args=True)
        password: SecretStr

    with pytest.raises(TypeError, match="pass the values as keyword arguments"):
        secretwatch.watch_settings(Tool, secrets_dir=db_volume.path)


def test_a_field_named_like_a_constructor_parameter(tmp_path: Path) -> None:
    """Only ``_options`` are pydantic-settings' options; ``values`` is a field like any."""

    class Odd(BaseSettings):
        values: int
        password: SecretStr

    vol = AtomicVolume(tmp_path / "v")
    vol.write({"password": "p"})
    with secretwatch.watch_settings(Odd, secrets_dir=vol.path, values=3) as live:
        assert live.current.values == 3


def test_fields_must_name_fields(live: secretwatch.LiveSettings[Db]) -> None:
    with pytest.raises(ValueError, match=r"Db has no field \['pasword'\]: password, port, user"):
        live.subscribe(print, fields={"pasword"})
    with pytest.raises(TypeError, match="not one string"):
        live.subscribe(print, fields="password")


def test_keys_of_json_objects_are_not_reported(tmp_path: Path) -> None:
    """A JSON object's keys may be secret: an error's location masks what is not a field."""

    class Tokens(BaseSettings):
        tokens: dict[str, int]

    vol = AtomicVolume(tmp_path / "v")
    vol.write({"tokens": json.dumps({CANARY: "not a number"})})
    with pytest.raises(secretwatch.ValidationError) as info:
        secretwatch.watch_settings(Tokens, secrets_dir=vol.path)
    assert [detail["loc"] for detail in info.value.errors()] == [("tokens", "*")]
    assert info.value.key == "tokens"
    assert CANARY not in str(info.value)


def test_current_is_read_only(live: secretwatch.LiveSettings[Db]) -> None:
    """``current`` follows the secrets: it can be neither replaced nor deleted."""
    first = live.current
    with pytest.raises(AttributeError, match="read-only"):
        live.current = first.model_copy(update={"port": 1})
    with pytest.raises(AttributeError, match="read-only"):
        del live.current
    assert live.current is first
