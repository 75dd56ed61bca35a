"""Secret files that can't apply: a source of higher priority gives their field's value.

pydantic-settings calls a model's sources in their order and merges what they give, an
earlier source winning (``deep_update``: a nested object merges key by key); pydantic then
reads each field under the first of its names that has a value (its aliases in order,
then its own name when ``validate_by_name`` is on). By these same rules, a secret file is
shadowed when a source before the secrets source decides its field's value, or a part of
it: a rotation of that file never reaches the model.

:func:`overridden` finds them, from what the sources gave (in the secrets source, while
the model is built); :func:`describe_source` names the winning source, never its value.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
)

from secretwatch._log import log as _log

__all__ = [
    "Overridden",
    "Shadow",
    "ShadowWarnings",
    "describe_source",
    "masked",
    "overridden",
    "source_name",
]

Part = tuple[str | int, ...]  # a path into a field's nested value; () is the whole value


@dataclass(frozen=True, slots=True)
class Shadow:
    """A secret file whose field (or part of it) takes its value from another source."""

    field: str  # the field's name, or a dotted path into its nested value ("db.password")
    path: str  # the secrets directory of the file that would apply
    key: str  # the file
    source: str  # the source that gives the value: "environment variable DB_PASSWORD", ...


class ShadowWarnings:
    """Warns once (``secretwatch.shadowed``) for each field whose secret file can't apply.

    Once while it stays so: a field that a later build finds not shadowed (its file gone,
    the variable unset) is warned about again when it is shadowed again. Never a value.
    """

    def __init__(self, model: str):
        self._model = model
        self._warned: frozenset[str] = frozenset()  # the fields warned about, still shadowed

    def report(self, shadows: Sequence[Shadow]) -> None:
        """Warn for the fields of ``shadows`` (one build's) not warned about yet."""
        for shadow in shadows:
            if shadow.field not in self._warned:
                _log.warning(
                    "secretwatch.shadowed",
                    model=self._model,
                    field=shadow.field,
                    path=shadow.path,
                    key=shadow.key,
                    source=shadow.source,
                )
        self._warned = frozenset(shadow.field for shadow in shadows)


@dataclass(frozen=True, slots=True)
class Overridden:
    """A field, or a part of it, that a secret file gives and an earlier source decides."""

    field_name: str
    part: Part
    source: str | None  # the name of the winning source, as pydantic-settings names it


def source_name(source: object) -> str:
    """A source's name, as ``BaseSettings`` keys the values of each source."""
    return str(getattr(source, "__name__", type(source).__name__))


def overridden(
    names: Mapping[str, Sequence[str]],
    data: Mapping[str, Any],
    earlier: Mapping[str, Any],
    states: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[Overridden]:
    """The fields, or parts of them, that the secrets source gives in ``data`` and lose.

    ``names`` are the names pydantic reads each field under, in its order (as the secrets
    source's ``_extract_field_info`` lists them); ``earlier`` is what the sources before
    the secrets source gave, merged; ``states`` what each of them gave, in their order.
    """
    found: list[Overridden] = []
    if not earlier:  # nothing came before the secrets: the usual case, at no cost
        return found
    for field_name, keys in names.items():
        own = next((key for key in keys if key in data), None)
        if own is None:
            continue  # no file for this field
        first = next(key for key in keys if key in earlier or key == own)
        if first != own:  # pydantic reads the field under another name, given earlier
            parts: list[Part] = [()]
        elif own in earlier:
            parts = list(_lost(data[own], earlier[own], ()))
        else:
            continue
        found.extend(Overridden(field_name, part, _winner(states, first, part)) for part in parts)
    return found


def _lost(mine: Any, theirs: Any, part: Part) -> Iterator[Part]:
    """The parts of ``mine`` that ``theirs`` replaces when merged over it (``deep_update``)."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in mine:
            if key in theirs:
                yield from _lost(mine[key], theirs[key], (*part, key))
    else:
        yield part


def _winner(states: Sequence[tuple[str, Mapping[str, Any]]], name: str, part: Part) -> str | None:
    """The first source that gives ``part`` of the value under ``name``."""
    for source, state in states:
        value = state
        for step in (name, *part):
            if not (isinstance(value, dict) and step in value):
                break
            value = value[step]
        else:
            return source
    return None


def describe_source(
    source: PydanticBaseSettingsSource | None, field_name: str, part: Part, names: Collection[str]
) -> str:
    """What ``source`` is, for a warning: the variable, the file; never a value.

    ``names`` are the field names of the model: only those (and list indexes) of ``part``
    may appear in a variable's name.
    """
    if source is None:  # two sources of the same name: one of them
        return "a source of higher priority"
    if isinstance(source, InitSettingsSource):
        return "init value"
    if isinstance(source, DotEnvSettingsSource):  # before EnvSettingsSource, its base
        files = source.env_file
        paths = [files] if isinstance(files, str | os.PathLike) else list(files or ())
        plural = "s" if len(paths) > 1 else ""
        return f"dotenv file{plural} {', '.join(str(path) for path in paths)}"
    if isinstance(source, EnvSettingsSource):
        return f"environment variable {_variable(source, field_name, part, names)}"
    return f"source {source_name(source)}"


def _variable(
    source: EnvSettingsSource, field_name: str, part: Part, names: Collection[str]
) -> str:
    """The environment variable that gives ``part`` of the field (its own spelling).

    A nested variable (``DB__PASSWORD``) wins over one that holds the whole object as JSON
    (``DB``), as in pydantic-settings, so the longest name is looked up first.
    """
    field = source.settings_cls.model_fields[field_name]
    delimiter = source.env_nested_delimiter
    known = []  # the steps of part up to the first one that is not a field name
    for step in part:
        if not (isinstance(step, int) or step in names):
            break
        known.append(source._apply_case_sensitive(str(step)))
    candidates: list[str] = []
    env_names = [env_name for _, env_name, _ in source._extract_field_info(field, field_name)]
    for env_name in env_names:
        if delimiter:  # DB__PASSWORD for the part "password" of "db"
            steps = [env_name, *known]
            candidates.extend(delimiter.join(steps[:end]) for end in range(len(steps), 1, -1))
        candidates.append(env_name)
    name = next((name for name in candidates if name in source.env_vars), None)
    if name is None:  # not one variable that can be named: the pattern
        return f"{env_names[0]}{delimiter or ''}*"
    return name if source.case_sensitive else _spelled(name)


def _spelled(name: str) -> str:
    """The environment's own spelling of a variable read case-insensitively."""
    return next((key for key in os.environ if key.lower() == name), name)


def masked(field_name: str, part: Part, names: Collection[str]) -> str:
    """``db.password``; a key of a JSON object that is no field name (maybe secret) is ``*``."""
    steps = [str(step) if isinstance(step, int) or step in names else "*" for step in part]
    return ".".join([field_name, *steps])
