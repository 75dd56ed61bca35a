"""The ``secretwatch`` command line (``python -m secretwatch``), built on pydantic-settings."""

from __future__ import annotations

import sys
from collections.abc import Callable

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, CliApp, CliSubCommand, SettingsConfigDict

from secretwatch._demo import run_demo
from secretwatch._logging import configure_logging
from secretwatch._sidecar.config import WatchOptionsModel

__all__ = ["cli", "main"]


class Demo(BaseModel):
    """Rotate a kubelet-style volume in a temporary directory and print what a watcher sees.

    Needs no cluster and no arguments; prints keys and versions, never a value.
    """

    def cli_cmd(self) -> None:
        code = run_demo(sys.stdout)
        if code:
            raise SystemExit(code)


class Watch(WatchOptionsModel):
    """Watch secret volumes; on every applied change, run the configured actions.

    Every option is also an environment variable SECRETWATCH_<OPTION> (e.g.
    SECRETWATCH_WEBHOOK=http://127.0.0.1:8080/-/reload); a repeatable option takes one
    value or a comma-separated list there. Command-line options win.
    """

    def cli_cmd(self) -> None:
        run_watch = _sidecar_command("watch")
        configure_logging(self.log_format, self.log_level)
        code = run_watch(self)
        if code:
            raise SystemExit(code)


class Cli(BaseSettings):
    """secretwatch: follow rotated secrets in mounted volumes without restarting."""

    model_config = SettingsConfigDict(
        cli_prog_name="secretwatch",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        env_prefix="SECRETWATCH_",
    )

    watch: CliSubCommand[Watch] = Field(
        description="watch volumes; reload a neighbour by webhook, signal or command"
    )
    demo: CliSubCommand[Demo] = Field(description="rotate a volume in a temporary directory")

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


def _sidecar_command(name: str) -> Callable[[WatchOptionsModel], int]:
    """The sidecar's code, which needs the ``sidecar`` extra (httpx, prometheus_client)."""
    try:
        from secretwatch._sidecar.watch import run_watch  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        raise SystemExit(
            f"secretwatch {name} needs the sidecar extra ({exc.name} is not installed): "
            "pip install 'secretwatch[sidecar]'"
        ) from None
    return run_watch


def cli(*args: str) -> int:
    """Run the command line with ``args`` (without the program name); return the exit code."""
    configure_logging("console")
    try:
        CliApp.run(Cli, cli_args=list(args))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(cli(*sys.argv[1:]))
