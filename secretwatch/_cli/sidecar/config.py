"""The sidecar's configuration: command-line options that are also ``SECRETWATCH_*`` variables.

Each command is a pydantic-settings model read from the environment (Kubernetes manifests
set env, not args) and from its command line, which wins. A repeatable option given by the
environment is one value or a comma-separated list.
"""

from __future__ import annotations

import shlex
import shutil
import signal as signals
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import CliPositionalArg

from secretwatch._cli.config import CLI_CONFIG, PathList, UrlList, WatchConfig

__all__ = [
    "ActionOptions",
    "RunOptionsModel",
    "VolumeOptions",
    "WatchOptionsModel",
    "parse_listen",
    "signal_number",
]


class ActionOptions(WatchConfig):
    """What to do on a change, and how the sidecar runs: shared by ``watch`` and ``run``."""

    model_config = CLI_CONFIG

    webhook: UrlList = Field(
        default_factory=list,
        description="POST to this URL on every change (repeatable; basic auth from the URL, "
        "never logged)",
        json_schema_extra={"metavar": "URL"},
    )
    webhook_file: str | None = Field(
        default=None,
        description="a file of webhook URLs, one a line, followed like a volume (a key of a "
        "mounted secret, say): keeps their credentials off the command line",
        json_schema_extra={"metavar": "PATH"},
    )
    webhook_method: str = Field(
        default="POST",
        description="HTTP method of the webhook",
        json_schema_extra={"metavar": "METHOD"},
    )
    webhook_status: int = Field(
        default=200,
        ge=100,
        le=599,
        description="the status that means done",
        json_schema_extra={"metavar": "STATUS"},
    )
    webhook_retries: int = Field(
        default=5,
        ge=0,
        le=1_000,
        description="retries of a failed action (webhook, signal or command), with "
        "exponential backoff and jitter",
        json_schema_extra={"metavar": "N"},
    )
    webhook_timeout: float = Field(
        default=5.0,
        gt=0,
        le=3_600,
        description="seconds per webhook attempt: connect, send and response together",
        json_schema_extra={"metavar": "SECONDS"},
    )
    signal: str | None = Field(
        default=None,
        description="send this signal (HUP, SIGUSR1, 1...) to the process of --pid-file "
        "or --process-name",
        json_schema_extra={"metavar": "SIGNAL"},
    )
    pid_file: str | None = Field(
        default=None,
        description="file holding the pid to signal",
        json_schema_extra={"metavar": "PATH"},
    )
    process_name: str | None = Field(
        default=None,
        description="signal the processes of this name (shareProcessNamespace: true)",
        json_schema_extra={"metavar": "NAME"},
    )
    exec: str | None = Field(
        default=None,
        description="run this command on every change, split as a shell would but run "
        "without one, with SECRETWATCH_PATH, SECRETWATCH_VERSION and "
        "SECRETWATCH_CHANGED_KEYS set",
        json_schema_extra={"metavar": "COMMAND"},
    )
    exec_timeout: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="seconds the command may run",
        json_schema_extra={"metavar": "SECONDS"},
    )
    listen: str | None = Field(
        default=None,
        description="serve /healthz, /readyz and /metrics on this address (:PORT for every "
        "interface)",
        json_schema_extra={"metavar": "HOST:PORT"},
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="the log's format (default: json when stdout is not a terminal, else console)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="the lowest level logged"
    )

    @field_validator("webhook")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not _is_http_url(url):  # the URL is not quoted: it may hold credentials
                raise ValueError("each webhook must be a valid http:// or https:// URL")
        return value

    @field_validator("webhook_method")
    @classmethod
    def _a_method(cls, value: str) -> str:
        if not value.isascii() or not value.isalpha():
            raise ValueError("a method is a word such as POST or PUT")
        return value.upper()

    @field_validator("exec")
    @classmethod
    def _a_command(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                argv = shlex.split(value)
            except ValueError:  # an unclosed quote
                raise ValueError("cannot split the command (an unclosed quote?)") from None
            if not argv:
                raise ValueError("the command is empty")
            if shutil.which(argv[0]) is None:  # found now, not at the first rotation
                raise ValueError("its program is not found, or not executable")
        return value

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str | None) -> str | None:
        if value is not None:
            signal_number(value)
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _signal_target(self) -> ActionOptions:
        if self.signal is not None and (self.pid_file is None) == (self.process_name is None):
            raise ValueError("--signal needs exactly one of --pid-file and --process-name")
        if self.signal is None and (self.pid_file or self.process_name):
            raise ValueError("--pid-file and --process-name need --signal")
        return self


class VolumeOptions(ActionOptions):
    """The volumes to watch, and what to do: the options of ``watch`` and ``run``."""

    paths: CliPositionalArg[PathList] = Field(
        default_factory=list,
        description="the secret volumes (directories, or files) to watch; or "
        "SECRETWATCH_PATHS=/a,/b",
        json_schema_extra={"metavar": "PATH"},
    )

    @model_validator(mode="after")
    def _some_paths(self) -> VolumeOptions:
        if not self.paths:
            raise ValueError("give the volumes to watch: PATH... or SECRETWATCH_PATHS")
        return self


class WatchOptionsModel(VolumeOptions):
    """Watch secret volumes; on every applied change, run the configured actions."""

    once: bool = Field(default=False, description="load, run the actions once, and exit")
    no_action: bool = Field(
        default=False,
        description="run no action: a sidecar that only reports (/healthz, /readyz and "
        "/metrics with --listen, and the logs); without it, watch needs an action",
    )

    @model_validator(mode="after")
    def _an_action(self) -> WatchOptionsModel:
        # a sidecar that reloads nothing reports ready all the same: only on purpose
        actions = [self.webhook, self.webhook_file, self.signal, self.exec]
        given = any(action not in (None, []) for action in actions)
        if not given and not self.no_action:
            raise ValueError(
                "give an action (--webhook, --webhook-file, --signal or --exec), or "
                "--no-action for a sidecar that only reports health and metrics"
            )
        if given and self.no_action:
            raise ValueError("--no-action and an action: give one or the other")
        return self


class RunOptionsModel(VolumeOptions):
    """Run a command; restart it, or signal it, when a watched volume changes."""

    on_change: str = Field(
        default="restart",
        description="restart (SIGTERM, then SIGKILL after --grace), or signal:NAME "
        "(e.g. signal:HUP) to send the command a signal",
        json_schema_extra={"metavar": "{restart,signal:NAME}"},
    )
    grace: float = Field(
        default=10.0,
        gt=0,
        le=86_400,
        description="seconds the command gets to exit before SIGKILL",
        json_schema_extra={"metavar": "SECONDS"},
    )

    @field_validator("on_change")
    @classmethod
    def _restart_or_signal(cls, value: str) -> str:
        kind, _, name = value.partition(":")
        if value == "restart" or (kind == "signal" and name):
            if name:
                signal_number(name)
            return value
        raise ValueError("on-change must be restart or signal:NAME")


def signal_number(name: str) -> signals.Signals:
    """``HUP``, ``SIGHUP`` or ``1`` -> ``signal.SIGHUP``."""
    text = name.strip().upper()
    try:
        if text.isdigit():
            return signals.Signals(int(text))
        return signals.Signals[text if text.startswith("SIG") else f"SIG{text}"]
    except (KeyError, ValueError):
        raise ValueError("unknown signal: use a name such as HUP or a number") from None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number, or out of range
    except ValueError:
        return False
    valid_port = port is None or port > 0
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname) and valid_port


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:PORT`` for every interface) -> ``(host, port)``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("listen must be HOST:PORT (or :PORT)")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 (":PORT" asks for all)
