"""Building a pydantic-settings model from watched volumes, with pydantic-settings' own sources.

A model is built exactly as ``Model(**values)`` would build it: the built-in init, environment
and dotenv sources, the model's own ``settings_customise_sources`` hook and its precedence.
The one difference is the secrets source: :class:`WatchedSecretsSource` takes each file's value
from a secretwatch snapshot (one consistent version per volume) instead of reading the disk,
with pydantic-settings' lookup rules (field name or alias, ``env_prefix``, case sensitivity,
later directories winning, surrounding whitespace stripped, JSON for complex fields).

Also here: how ``watch_settings``' arguments map onto pydantic-settings' (the secrets
directories, field values and ``_options``), and what it refuses (command-line parsing).
"""

from __future__ import annotations

import inspect
import json
import os
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
)
from pydantic_settings.sources import DefaultSettingsSource

from secretwatch._errors import (
    DecodeError,
    SecretWatchError,
    ValidationError,
    describe,
    passed_on,
    safe_errors,
)
from secretwatch._read.snapshot import Snapshot
from secretwatch._settings.shadows import (
    Overridden,
    Shadow,
    describe_source,
    masked,
    overridden,
    source_name,
)

__all__ = [
    "SOURCE_OPTIONS",
    "SecretsDir",
    "Shadow",
    "WatchedSecretsSource",
    "build_model",
    "field_names",
    "refuse_command_line",
    "secrets_dirs",
    "split_kwargs",
]

M = TypeVar("M", bound=BaseSettings)

# The ``_name`` keyword options of ``BaseSettings.__init__`` that watch_settings accepts, and
# the sources that take each one (as ``name``), as ``BaseSettings._settings_init_sources``
# passes them.
_ENV = {"env", "dotenv"}
SOURCE_OPTIONS: dict[str, set[str]] = {
    "case_sensitive": {"env", "dotenv", "secrets"},
    "env_prefix": {"env", "dotenv", "secrets"},
    "env_prefix_target": {"env", "dotenv", "secrets"},
    "env_nested_delimiter": _ENV,
    "env_nested_max_split": _ENV,
    "env_ignore_empty": _ENV,
    "env_parse_none_str": _ENV,
    "env_parse_enums": _ENV,
    "env_file": {"dotenv"},
    "env_file_encoding": {"dotenv"},
    "env_file_depth": {"dotenv"},
    "nested_model_default_partial_update": {"init", "default"},
}


class WatchedSecretsSource(SecretsSettingsSource):
    """pydantic-settings' secrets source, reading from snapshots instead of the disk.

    ``volumes`` are the snapshots of the secrets directories, in the order given (a later
    one wins). Its ``secrets_dir`` names the directories, for sources that wrap it.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        volumes: Sequence[Snapshot],
        *,
        case_sensitive: bool | None = None,
        env_prefix: str | None = None,
        env_prefix_target: Any = None,
    ):
        super().__init__(
            settings_cls,
            secrets_dir=[volume.path for volume in volumes],
            case_sensitive=case_sensitive,
            env_prefix=env_prefix,
            env_prefix_target=env_prefix_target,
        )
        self._volumes = tuple(volumes)
        self._found: dict[str, tuple[str, str]] = {}  # field name or key -> (volume, key)
        self._shadowed: set[str] = set()
        self._names: dict[str, list[str]] = {}  # field name -> the names pydantic reads it by
        self.overridden: list[Overridden] = []  # the files that lose, as of the last call

    def __call__(self) -> dict[str, Any]:
        # the base class of SecretsSettingsSource: every field, looked up by get_field_value
        data = super(SecretsSettingsSource, self).__call__()
        # fields that a source of higher priority gave (init, environment, ...) win: their
        # values don't come from these files
        self._shadowed = set(self.current_state)
        earlier = list(self.settings_sources_data.items())  # the sources called before this
        self.overridden = overridden(self._names, data, self.current_state, earlier)
        return data

    def shadows(self, sources: Sequence[PydanticBaseSettingsSource]) -> list[Shadow]:
        """The files whose field, or a part of it, another of ``sources`` gives: one each."""
        if not self.overridden:
            return []
        by_name: dict[str, PydanticBaseSettingsSource] = {}
        for source in sources:
            by_name.setdefault(source_name(source), source)
        names = field_names(self.settings_cls)
        shadows: dict[str, Shadow] = {}
        for lost in self.overridden:
            path, key = self._found[lost.field_name]
            winner = by_name.get(lost.source) if lost.source is not None else None
            field = masked(lost.field_name, lost.part, names)
            description = describe_source(winner, lost.field_name, lost.part, names)
            shadows.setdefault(field, Shadow(field, path, key, description))
        return list(shadows.values())

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The stripped text of the file for ``field`` in the last volume that has it."""
        field_key, value_is_complex = field_name, False
        info = self._extract_field_info(field, field_name)
        self._names[field_name] = [key for key, _, _ in info]
        for field_key, file_name, value_is_complex in info:
            for volume in reversed(self._volumes):
                key = self._find_key(volume._raw, file_name)
                if key is not None:
                    self._found[field_name] = self._found[field_key] = (volume.path, key)
                    return _text(volume, key).strip(), field_key, value_is_complex
        return None, field_key, value_is_complex

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """JSON for a complex field; a document that is not JSON names its key, not its text."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except json.JSONDecodeError as exc:
            path, key = self._found[field_name]
            message = (
                f"{path}: key {key!r} is not valid JSON for the field {field_name!r} "
                f"(line {exc.lineno}, column {exc.colno})"
            )
            raise DecodeError(message, path=path, key=key) from None

    def located(self, field_key: str) -> tuple[str, str] | None:
        """The volume and key that gave the value of a field, if one did."""
        return None if field_key in self._shadowed else self._found.get(field_key)

    def _find_key(self, files: Mapping[str, bytes], name: str) -> str | None:
        if name in files:
            return name
        if not self.case_sensitive:
            folded = name.lower()
            for key in sorted(files):  # a stable choice among keys that differ in case only
                if key.lower() == folded:
                    return key
        return None

    def __repr__(self) -> str:
        return f"WatchedSecretsSource(secrets_dir={self.secrets_dir!r})"


def _text(volume: Snapshot, key: str) -> str:
    try:
        return volume._raw[key].decode("utf-8")
    except UnicodeDecodeError:
        message = (
            f"{volume.path}: key {key!r} is not valid UTF-8 text, so it can't fill a settings "
            "field (declare the field as bytes-like content in a text encoding such as base64)"
        )
        raise DecodeError(message, path=volume.path, key=key) from None


def build_model(
    model: type[M],
    volumes: Sequence[Snapshot],
    init_kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    path: str,
) -> tuple[M, list[Shadow]]:
    """Build ``model`` from ``init_kwargs``, the environment, dotenv and ``volumes``.

    ``options`` are ``BaseSettings.__init__``'s underscore options without the underscore
    (``env_prefix``, ``env_file``, ...), each one a key of :data:`SOURCE_OPTIONS`. ``path``
    is the volume an error is about when no key can be named.

    Returns the model and the secret files it was not built from, though they name one of
    its fields: a source before the secrets source gives the field (or a part of it).

    Raises:
        ValidationError: the values don't make a valid model; its ``errors()`` list the
            fields, its ``key`` is the key that gave the first field in error, if any.
        DecodeError: a key that fills a field is not UTF-8 text, or not the JSON a complex
            field needs.

    Anything the model's code raises (``settings_customise_sources``, its sources and
    validators), ``BaseException`` included, is a :class:`ValidationError`, but for a
    ``KeyboardInterrupt`` on the main thread (a Ctrl-C), which is raised again, new.
    """

    def given(source: str) -> dict[str, Any]:
        return {name: value for name, value in options.items() if source in SOURCE_OPTIONS[name]}

    values = dict(init_kwargs)
    secrets = WatchedSecretsSource(model, volumes, **given("secrets"))
    try:  # the model's code (its hook, sources and validators) may raise anything
        sources = model.settings_customise_sources(
            model,
            init_settings=InitSettingsSource(model, init_kwargs=values, **given("init")),
            env_settings=EnvSettingsSource(model, **given("env")),
            dotenv_settings=DotEnvSettingsSource(model, **given("dotenv")),
            file_secret_settings=secrets,
        )
    except BaseException as exc:
        failure = exc
    else:
        if any(isinstance(source, CliSettingsSource) for source in sources):
            raise TypeError(
                f"{model.__name__}.settings_customise_sources returns a command-line source: "
                "watch_settings does not parse the command line; parse it once and pass the "
                "values as keyword arguments"
            )
        defaults = DefaultSettingsSource(model, **given("default"))
        try:
            built = model(_build_sources=((*sources, defaults), values))
        except SecretWatchError:
            raise
        except BaseException as exc:  # a validator's sys.exit() rejects, as elsewhere
            failure = exc
        else:
            return built, secrets.shadows(sources)
    if passed_on(failure):  # a Ctrl-C: new, outside the handler
        raise KeyboardInterrupt
    if isinstance(failure.__cause__, SecretWatchError):  # raised in a source, wrapped by it
        raise failure.__cause__
    names = field_names(model)
    errors = safe_errors(failure, names)
    first = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else ""
    path, key = secrets.located(first) or (path, None)
    dirs = ", ".join(volume.path for volume in volumes)
    message = f"{model.__name__} settings from {dirs} are not valid: {describe(failure, names)}"
    raise ValidationError(message, path=path, key=key, errors=errors)


def field_names(model: type[BaseModel]) -> frozenset[str]:
    """The names and aliases of the fields of ``model`` and of the models in its fields."""
    names: set[str] = set()
    seen: set[type] = set()

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                return
            seen.add(annotation)
            for name, field in annotation.model_fields.items():
                names.add(name)
                names.update(_alias_names(field.alias, field.validation_alias))
                visit(field.annotation)
        for argument in typing.get_args(annotation):
            visit(argument)

    visit(model)
    return frozenset(names)


def _alias_names(*aliases: Any) -> set[str]:
    names: set[str] = set()
    for alias in aliases:
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(_alias_names(*alias.choices))
        elif isinstance(alias, AliasPath):
            names.update(part for part in alias.path if isinstance(part, str))
    return names


SecretsDir: TypeAlias = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A secrets directory, or several (a later one wins), as pydantic-settings takes them."""

_SETTINGS_OPTIONS = frozenset(  # BaseSettings.__init__'s own options: _env_file, ...
    name for name in inspect.signature(BaseSettings.__init__).parameters if name.startswith("_")
)
_CLI_CONFIG = ("cli_parse_args", "cli_settings_source")


def refuse_command_line(model: type[BaseSettings]) -> None:
    """A model that parses the command line can't be rebuilt on rotation: refuse it."""
    for name in _CLI_CONFIG:
        if model.model_config.get(name) not in (None, False):
            raise TypeError(
                f"{model.__name__} sets {name}: watch_settings does not parse the command "
                "line; parse it once and pass the values as keyword arguments (they win "
                "over every other source, as command-line values do)"
            )


def secrets_dirs(model: type[BaseSettings], secrets_dir: SecretsDir | None) -> tuple[str, ...]:
    value = secrets_dir if secrets_dir is not None else model.model_config.get("secrets_dir")
    if value is None:
        raise ValueError(
            f"{model.__name__} has no secrets_dir: pass secrets_dir= or set "
            "model_config['secrets_dir']"
        )
    paths = [value] if isinstance(value, str | os.PathLike) else list(value)
    if not paths:
        raise ValueError("secrets_dir must name at least one directory")
    absolute = [os.path.abspath(os.path.expanduser(os.fspath(path))) for path in paths]
    # a directory named twice counts where it is named last, as in pydantic-settings
    return tuple(reversed(dict.fromkeys(reversed(absolute))))


def split_kwargs(model_kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Field values, and pydantic-settings' ``_options`` (without the underscore)."""
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, value in model_kwargs.items():
        if name not in _SETTINGS_OPTIONS:
            values[name] = value
        elif name == "_secrets_dir":
            raise TypeError("pass the directories as secrets_dir= (without the underscore)")
        elif name[1:] in SOURCE_OPTIONS:
            options[name[1:]] = value
        elif name.startswith("_cli"):
            raise TypeError(
                f"watch_settings does not parse the command line ({name}): parse it once and "
                "pass the values as keyword arguments"
            )
        else:
            raise TypeError(f"watch_settings does not support {name}")
    return values, options
