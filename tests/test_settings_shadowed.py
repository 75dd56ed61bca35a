"""Live settings: a secret file that a source of higher priority shadows is reported, once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from structlog.testing import LogCapture

import secretwatch
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT, events

CANARY = "CANARY-7f3a-shadowed-do-not-leak"
ROTATED = "CANARY-7f3a-rotated-do-not-leak"
FAST: secretwatch.WatchOptions = {"debounce": 0}


class Db(BaseSettings):
    password: str
    port: int = 5432


class Aliased(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="my_")
    password: SecretStr = Field(validation_alias=AliasChoices("db_password", "pw"))


class ByName(BaseSettings):
    """Read by its alias or by its name: pydantic takes the alias first, whoever gave it (the
    name is then an extra input, which must be allowed)."""

    model_config = SettingsConfigDict(validate_by_name=True, extra="ignore")
    password: str = Field(validation_alias="pw")


class Inner(BaseModel):
    host: str = "localhost"
    password: str = "unset"


class Nested(BaseSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__")
    db: Inner


class SecretsFirst(BaseSettings):
    """Secrets before the environment: the model's own hook decides."""

    password: str

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, file_secret_settings, env_settings, dotenv_settings


class FromVault(PydanticBaseSettingsSource):
    """A source of the application's own."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {"password": "from-vault"}


class Vaulted(BaseSettings):
    """Its own source before the secrets."""

    password: str

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, FromVault(settings_cls), file_secret_settings


def _plain(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@dataclass
class Case:
    """A model, its secret files (``{value}`` is the secret) and the sources around them."""

    model: type[BaseSettings]
    files: dict[str, str]
    read: Callable[[Any], str]  # the value the secret file is meant to fill
    env: dict[str, str] = field(default_factory=dict)
    init: dict[str, Any] = field(default_factory=dict)
    dotenv: str | None = None
    shadowed: tuple[str, str] | None = None  # (field, source) that the warning names


def _password(settings: Any) -> str:
    return _plain(settings.password)


CASES = {
    "environment": Case(
        Db, {"password": "{value}"}, _password, env={"PASSWORD": "from-env"},
        shadowed=("password", "environment variable PASSWORD"),
    ),
    "environment, other case": Case(
        Db, {"PASSWORD": "{value}"}, _password, env={"Password": "from-env"},
        shadowed=("password", "environment variable Password"),
    ),
    "empty environment variable": Case(
        Db, {"password": "{value}"}, _password, env={"PASSWORD": ""},
        shadowed=("password", "environment variable PASSWORD"),
    ),
    "empty variable, env_ignore_empty": Case(
        Db, {"password": "{value}"}, _password, env={"PASSWORD": ""},
        init={"_env_ignore_empty": True},
    ),
    "init value": Case(
        Db, {"password": "{value}"}, _password, init={"password": "from-init"},
        shadowed=("password", "init value"),
    ),
    "dotenv": Case(
        Db, {"password": "{value}"}, _password, dotenv="PASSWORD=from-dotenv\n",
        shadowed=("password", "dotenv file {dotenv}"),
    ),
    "no other source": Case(Db, {"password": "{value}"}, _password, env={"PORT": "1"}),
    "secrets first": Case(
        SecretsFirst, {"password": "{value}"}, _password, env={"PASSWORD": "from-env"},
        init={"_env_file": None},
    ),
    "a source of the model's own": Case(
        Vaulted, {"password": "{value}"}, _password, shadowed=("password", "source FromVault"),
    ),
    "aliases and prefix": Case(
        Aliased, {"pw": "{value}"}, _password, env={"DB_PASSWORD": "from-env"},
        shadowed=("password", "environment variable DB_PASSWORD"),
    ),
    "unused prefixed variable": Case(
        Aliased, {"pw": "{value}"}, _password, env={"MY_PASSWORD": "not read"},
    ),
    "alias over name": Case(
        ByName, {"password": "{value}"}, _password, env={"PW": "from-env"},
        shadowed=("password", "environment variable PW"),
    ),
    "the file's alias over the variable's name": Case(
        ByName, {"pw": "{value}"}, _password, env={"PASSWORD": "from-env"},
    ),
    "nested part": Case(
        Nested, {"db": '{{"host": "h", "password": "{value}"}}'}, lambda s: s.db.password,
        env={"DB__PASSWORD": "from-env"},
        shadowed=("db.password", "environment variable DB__PASSWORD"),
    ),
    "nested, another part": Case(
        Nested, {"db": '{{"password": "{value}"}}'}, lambda s: s.db.password,
        env={"DB__HOST": "from-env"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_warned_exactly_when_a_rotation_cannot_reach_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture, case: Case
) -> None:
    """A warning names the field and the winning source iff rotating its file leaves it as is."""
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    kwargs = dict(case.init)
    dotenv = tmp_path / "x.env"
    if case.dotenv is not None:
        dotenv.write_text(case.dotenv)
        kwargs["_env_file"] = dotenv
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({key: text.format(value=CANARY) for key, text in case.files.items()})
    with secretwatch.watch_settings(
        case.model, secrets_dir=vol.path, watch_options=FAST, **kwargs
    ) as live:
        before = case.read(live.current)
        vol.write({key: text.format(value=ROTATED) for key, text in case.files.items()})
        after = case.read(live.reload())
    assert (before, after) == ((CANARY, ROTATED) if case.shadowed is None else (before, before))
    assert CANARY not in repr(logs.entries)
    assert ROTATED not in repr(logs.entries)
    warnings = events(logs, "secretwatch.shadowed")
    if case.shadowed is None:
        assert warnings == []
        return
    (warning,) = warnings  # at start; not again on the rotation
    shadowed_field, source = case.shadowed
    assert warning["log_level"] == "warning"
    assert warning["model"] == case.model.__name__
    assert warning["field"] == shadowed_field
    assert warning["source"] == source.format(dotenv=dotenv)
    assert warning["path"] == str(vol.path)
    assert warning["key"] == next(iter(case.files))


def _wait_for_port(live: secretwatch.LiveSettings[Db], port: int) -> None:
    """Wait until the model in force has ``port``: the build that logs comes before it."""
    version = live.version
    while live.current.port != port:
        assert live.wait_for_change(TIMEOUT, since=version) is not None, f"no port {port}"
        version = live.version


def test_environment_shadows_one_warning_at_start_and_none_on_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """The issue's case: rotations of a file the environment shadows warn once, at start."""
    monkeypatch.setenv("PASSWORD", "from-env")
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": CANARY, "port": "1"})
    with secretwatch.watch_settings(Db, secrets_dir=vol.path, watch_options=FAST) as live:
        assert len(events(logs, "secretwatch.shadowed")) == 1
        for port in (2, 3, 4):
            vol.write({"password": f"{CANARY}-{port}", "port": str(port)})
            _wait_for_port(live, port)
        assert live.current.password == "from-env"
    (warning,) = events(logs, "secretwatch.shadowed")
    assert (warning["field"], warning["source"]) == ("password", "environment variable PASSWORD")
    assert CANARY not in repr(logs.entries)


def test_a_shadowed_file_that_appears_later_is_warned_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """A rotation that adds a file for a field the environment gives warns at that rotation."""
    monkeypatch.setenv("PASSWORD", "from-env")
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"port": "1"})
    with secretwatch.watch_settings(Db, secrets_dir=vol.path, watch_options=FAST) as live:
        assert events(logs, "secretwatch.shadowed") == []
        vol.write({"password": CANARY, "port": "2"})
        _wait_for_port(live, 2)
        (warning,) = events(logs, "secretwatch.shadowed")
        assert (warning["field"], warning["key"]) == ("password", "password")
    assert CANARY not in repr(logs.entries)


def test_a_shadow_that_ends_and_comes_back_is_warned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """Once per stretch of being shadowed: a file removed and added back is warned again."""
    monkeypatch.setenv("PASSWORD", "from-env")
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": CANARY, "port": "1"})
    with secretwatch.watch_settings(Db, secrets_dir=vol.path, watch_options=FAST) as live:
        vol.write({"port": "2"})
        _wait_for_port(live, 2)
        assert len(events(logs, "secretwatch.shadowed")) == 1
        vol.write({"password": CANARY, "port": "3"})
        _wait_for_port(live, 3)
        assert len(events(logs, "secretwatch.shadowed")) == 2


def test_a_variable_set_later_is_warned_at_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """reload() reads the environment again: a variable that now wins over a file is warned."""
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": CANARY})
    with secretwatch.watch_settings(Db, secrets_dir=vol.path, watch_options=FAST) as live:
        assert events(logs, "secretwatch.shadowed") == []
        monkeypatch.setenv("PASSWORD", "from-env")
        assert live.reload().password == "from-env"
        (warning,) = events(logs, "secretwatch.shadowed")
        assert warning["source"] == "environment variable PASSWORD"


def test_the_later_directory_that_gives_the_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """With several directories, the warning names the one whose file would apply."""
    monkeypatch.setenv("PASSWORD", "from-env")
    base, override = AtomicVolume(tmp_path / "base"), AtomicVolume(tmp_path / "override")
    base.write({"password": CANARY})
    override.write({"Password": CANARY})
    with secretwatch.watch_settings(Db, secrets_dir=[base.path, override.path]):
        pass
    (warning,) = events(logs, "secretwatch.shadowed")
    assert (warning["path"], warning["key"]) == (str(override.path), "Password")


def test_keys_of_a_shadowed_json_object_are_not_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """A JSON object's keys may be secret: a shadowed part that is not a field is ``*``."""

    class Tokens(BaseSettings):
        tokens: dict[str, str]

    monkeypatch.setenv("TOKENS", f'{{"{CANARY}": "from-env"}}')
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"tokens": f'{{"{CANARY}": "{ROTATED}", "other": "x"}}'})
    with secretwatch.watch_settings(Tokens, secrets_dir=vol.path) as live:
        assert live.current.tokens == {CANARY: "from-env", "other": "x"}
    (warning,) = events(logs, "secretwatch.shadowed")
    assert (warning["field"], warning["source"]) == ("tokens.*", "environment variable TOKENS")
    assert CANARY not in repr(logs.entries)
    assert ROTATED not in repr(logs.entries)


def test_each_shadowed_part_of_a_nested_value_names_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """Nested values merge key by key: each part another source gives is warned, by source."""
    monkeypatch.setenv("DB__HOST", "env-host")
    dotenv = tmp_path / "x.env"
    dotenv.write_text("DB__PASSWORD=from-dotenv\n")
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"db": f'{{"host": "h", "password": "{CANARY}"}}'})
    with secretwatch.watch_settings(Nested, secrets_dir=vol.path, _env_file=dotenv) as live:
        assert live.current.db == Inner(host="env-host", password="from-dotenv")
    found = {entry["field"]: entry["source"] for entry in events(logs, "secretwatch.shadowed")}
    assert found == {
        "db.host": "environment variable DB__HOST",
        "db.password": f"dotenv file {dotenv}",
    }
