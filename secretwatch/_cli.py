"""The ``secretwatch`` command line (``python -m secretwatch``), built on pydantic-settings."""

from __future__ import annotations

import sys

import structlog
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, CliApp, CliSubCommand, SettingsConfigDict

from secretwatch._demo import run_demo

__all__ = ["cli", "main"]


class Demo(BaseModel):
    """Rotate a kubelet-style volume in a temporary directory and print what a watcher sees.

    Needs no cluster and no arguments; prints keys and versions, never a value.
    """

    def cli_cmd(self) -> None:
        code = run_demo(sys.stdout)
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

    demo: CliSubCommand[Demo] = Field(description="rotate a volume in a temporary directory")

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


def cli(*args: str) -> int:
    """Run the command line with ``args`` (without the program name); return the exit code."""
    _configure_logging()
    try:
        CliApp.run(Cli, cli_args=list(args))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(cli(*sys.argv[1:]))


def _configure_logging() -> None:
    """Structured logs to stderr, so that stdout stays the command's own output."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(),
                exception_formatter=structlog.dev.plain_traceback,
            ),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
