"""Watch options as configuration: a pydantic-settings model read from ``SECRETWATCH_*``.

Kubernetes manifests set environment variables, not arguments, so the sidecar (and any
program that lets its manifest tune its watchers) reads its configuration from the
environment with pydantic-settings. :class:`WatchConfig` holds a watcher's options;
:data:`CommaList` is the type of a repeatable option, which a manifest writes as one value
or a comma-separated list (``SECRETWATCH_WEBHOOK=http://a,http://b``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from secretwatch._watch.watcher import (
    DEFAULT_DEBOUNCE,
    DEFAULT_MAX_BYTES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RESYNC_INTERVAL,
    WatchOptions,
)

__all__ = [
    "CLI_CONFIG",
    "ENV_PREFIX",
    "JsonOption",
    "PathList",
    "UrlList",
    "WatchConfig",
    "comma_separated",
]

ENV_PREFIX = "SECRETWATCH_"

CLI_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,  # never an unprefixed variable, such as a CI job's WAIT
    cli_kebab_case=True,
    cli_implicit_flags="toggle",  # --once, not --once and --no-once
    cli_hide_none_type=True,
    extra="ignore",
)
"""The configuration of every command's model: options from the command line, or from
``SECRETWATCH_<OPTION>`` variables."""


def comma_separated(starts: str) -> Callable[[Any], Any]:
    """A splitter of ``"a, b"`` into ``["a", "b"]``, at the commas before ``starts`` only.

    pydantic-settings gives a list option as one comma-joined string (from the environment,
    and from repeated options on the command line). ``starts`` is a regular expression for
    what begins an item (``https?://`` for URLs, ``/`` for absolute paths), so that a comma
    inside an item (``?ids=1,2``) does not split it. A list is left as it is.
    """
    separator = re.compile(rf",\s*(?={starts})")

    def split(value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in separator.split(value) if part.strip()]
        return value

    return split


UrlList = Annotated[list[str], NoDecode, BeforeValidator(comma_separated("[A-Za-z]+://"))]
"""A list of URLs, split only at commas before a scheme (``a,https://b``)."""

PathList = Annotated[list[str], NoDecode, BeforeValidator(comma_separated("/"))]
"""A list of paths, split only at commas before an absolute path (``/a,/b``)."""


with warnings.catch_warnings():  # a field called json shadows BaseModel.json(), unused here
    warnings.filterwarnings("ignore", 'Field name "json"', UserWarning)

    class JsonOption(BaseSettings):
        """``--json``, or ``SECRETWATCH_JSON``: a field called ``json`` (not ``json_`` with the
        alias ``json``), since pydantic-settings puts no prefix before an alias, and would
        read an unprefixed ``JSON`` variable."""

        model_config = CLI_CONFIG

        json: bool = Field(default=False, description="print JSON, for scripts")  # type: ignore[assignment]  # shadows BaseModel.json()


class WatchConfig(BaseSettings):
    """A watcher's options, from ``SECRETWATCH_DEBOUNCE``, ``SECRETWATCH_POLLING``, ...

    Examples:
        >>> config = WatchConfig()  # reads the environment
        >>> watcher = SecretWatcher(path, **config.watch_options())  # doctest: +SKIP
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    debounce: float = Field(
        default=DEFAULT_DEBOUNCE,
        ge=0,
        le=3_600,
        allow_inf_nan=False,
        description="seconds of quiet before a reload (a ..data swap is read at once)",
        json_schema_extra={"metavar": "SECONDS"},
    )
    resync: float = Field(
        default=DEFAULT_RESYNC_INTERVAL,
        ge=0,
        le=604_800,
        allow_inf_nan=False,
        description="seconds between full re-reads that back up the events; 0 turns them off",
        json_schema_extra={"metavar": "SECONDS"},
    )
    polling: bool = Field(default=False, description="poll instead of using inotify")
    poll_interval: float = Field(
        default=DEFAULT_POLL_INTERVAL,
        gt=0,
        le=3_600,
        allow_inf_nan=False,
        description="seconds between polls",
        json_schema_extra={"metavar": "SECONDS"},
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES,
        gt=0,
        description="the largest file accepted",
        json_schema_extra={"metavar": "BYTES"},
    )

    def watch_options(self) -> WatchOptions:
        """These options as keyword arguments of :class:`SecretWatcher` and :func:`watch`."""
        return WatchOptions(
            debounce=self.debounce,
            resync_interval=self.resync or None,
            polling=self.polling,
            poll_interval=self.poll_interval,
            max_bytes=self.max_bytes,
        )
