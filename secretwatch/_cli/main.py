"""The ``secretwatch`` command line (``python -m secretwatch``), built on pydantic-settings."""

from __future__ import annotations

import importlib
import os
import sys
from contextvars import ContextVar
from types import ModuleType
from typing import ClassVar

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    CliApp,
    CliPositionalArg,
    CliSubCommand,
    SettingsConfigDict,
    SettingsError,
)

from secretwatch._cli.aicore import Rotate, Status
from secretwatch._cli.config import CLI_CONFIG, ENV_PREFIX, JsonOption
from secretwatch._cli.demo import run_demo
from secretwatch._cli.helptext import command_line, command_models
from secretwatch._cli.lifecycle import Create, Delete, ListSecrets
from secretwatch._cli.pairs import hidden_values, hide_values
from secretwatch._cli.show import (
    BAD_NAMES_EXIT,
    FINGERPRINT_KEY_VARIABLE,
    bad_names_warning,
    describe_volume,
    print_volume,
)
from secretwatch._cli.sidecar.config import RunOptionsModel, WatchOptionsModel
from secretwatch._cli.usage import UsageError, refuse_unknown_variables
from secretwatch._errors import SecretWatchError
from secretwatch._logging import configure_logging
from secretwatch._read.names import escaped
from secretwatch._watch.watcher import DEFAULT_MAX_BYTES

__all__ = ["cli", "main"]

# the command after ``run ... --``, kept from the parser, which would take it for options
_child_command: ContextVar[tuple[str, ...]] = ContextVar("child_command", default=())


class Demo(BaseModel):
    """Rotate a kubelet-style volume in a temporary directory and print what a watcher sees.

    Needs no cluster and no arguments; prints keys and versions, never a value.
    """

    cli_usage: ClassVar[str] = "secretwatch demo"
    cli_examples: ClassVar[str] = "example:\n  secretwatch demo"

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

    cli_usage: ClassVar[str] = "secretwatch watch [OPTIONS] PATH..."
    cli_examples: ClassVar[str] = """examples:
  secretwatch watch /etc/credentials --webhook http://127.0.0.1:8080/-/reload
  secretwatch watch /etc/credentials --signal HUP --process-name nginx
  secretwatch watch /etc/credentials --exec 'my-server-ctl reload' --listen :9090
  secretwatch watch /etc/credentials --no-action --listen :9090   # health and metrics only
  SECRETWATCH_WEBHOOK=http://127.0.0.1:8080/-/reload secretwatch watch /etc/credentials"""

    def cli_cmd(self) -> None:
        run_watch = _sidecar_module("watch").run_watch
        configure_logging(self.log_format, self.log_level)
        code = run_watch(self)
        if code:
            raise SystemExit(code)


class Run(RunOptionsModel):
    """Run a command (after --), and restart or signal it when a watched volume changes.

    SIGTERM and SIGINT are passed on to the command; run exits with its exit code. The
    command never sees secretwatch's own arguments. Every option is also an environment
    variable SECRETWATCH_<OPTION>, as for watch.
    """

    cli_usage: ClassVar[str] = "secretwatch run [OPTIONS] PATH... -- COMMAND [ARG...]"
    cli_examples: ClassVar[str] = """examples:
  secretwatch run /etc/credentials -- my-server --port 8080
  secretwatch run /etc/credentials --on-change signal:HUP -- my-server --port 8080
  secretwatch run /etc/credentials --grace 30 --listen :9090 -- my-server"""

    def cli_cmd(self) -> None:
        command = _child_command.get()
        if not command:
            print("secretwatch run: give the command after --: run PATH... -- CMD", file=sys.stderr)
            raise SystemExit(2)
        run_command = _sidecar_module("run").run_command
        configure_logging(self.log_format, self.log_level)
        raise SystemExit(run_command(self, list(command)))


class Show(JsonOption):
    """Show what a secret volume holds: keys, sizes, fingerprints, version and writer.

    Never a value. Fingerprints are HMAC-SHA256 keyed with SECRETWATCH_FINGERPRINT_KEY
    (random per run when unset, so that a weak password can't be guessed from them): set
    the same key to compare fingerprints across pods or runs. Exit status: 0; 1 when the
    volume can't be read; 3 when it holds names that are not printable UTF-8, so not keys
    (a watcher rejects it): the keys are shown, and those names, escaped, apart.
    """

    model_config = CLI_CONFIG
    cli_usage: ClassVar[str] = "secretwatch show [OPTIONS] PATH"
    cli_examples: ClassVar[str] = """examples:
  secretwatch show /etc/credentials
  secretwatch show /etc/credentials --json
  SECRETWATCH_FINGERPRINT_KEY=same-everywhere secretwatch show /etc/credentials"""

    path: CliPositionalArg[str] = Field(
        description="the volume directory, or a file", json_schema_extra={"metavar": "PATH"}
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES,
        gt=0,
        description="the largest file read",
        json_schema_extra={"metavar": "BYTES"},
    )

    def cli_cmd(self) -> None:
        try:
            description = describe_volume(self.path, max_bytes=self.max_bytes)
        except SecretWatchError as exc:
            # the path is the user's, keys are quoted: nothing should draw on the terminal
            raise SystemExit(f"secretwatch show: {escaped(exc.message, backslash=False)}") from None
        print_volume(description, sys.stdout, as_json=self.json)
        warning = bad_names_warning(description)
        if warning is not None:  # listed, but a watcher would reject this volume
            sys.stdout.flush()
            print(f"secretwatch show: {warning}", file=sys.stderr)
            raise SystemExit(BAD_NAMES_EXIT)


class Cli(BaseSettings):
    """secretwatch: follow rotated secrets in mounted volumes without restarting."""

    model_config = SettingsConfigDict(  # the parser itself is helptext.command_line's
        cli_kebab_case=True,
        cli_implicit_flags="toggle",
        cli_hide_none_type=True,
        cli_exit_on_error=False,  # usage errors come back here: some arguments are secrets
        env_prefix=ENV_PREFIX,
    )
    cli_usage: ClassVar[str] = "secretwatch [--version] [-h] COMMAND [OPTIONS] [ARG...]"
    cli_examples: ClassVar[str] = """examples:
  secretwatch demo
  secretwatch watch /etc/credentials --webhook http://127.0.0.1:8080/-/reload
  secretwatch run /etc/credentials -- my-server --port 8080
  secretwatch show /etc/credentials
  secretwatch COMMAND --help"""

    run: CliSubCommand[Run] = Field(
        description="run a command; restart or signal it when a volume changes"
    )
    watch: CliSubCommand[Watch] = Field(
        description="watch volumes; reload a neighbour by webhook, signal or command"
    )
    show: CliSubCommand[Show] = Field(description="show a volume's keys, never its values")
    rotate: CliSubCommand[Rotate] = Field(
        description="update an AI Core generic secret, and wait until it has replicated"
    )
    status: CliSubCommand[Status] = Field(
        description="show an AI Core generic secret's labels and replication"
    )
    create: CliSubCommand[Create] = Field(
        description="create an AI Core generic secret; refuses one that exists"
    )
    list: CliSubCommand[ListSecrets] = Field(
        description="list the AI Core generic secrets of a scope, never their values"
    )
    delete: CliSubCommand[Delete] = Field(description="delete an AI Core generic secret (--yes)")
    demo: CliSubCommand[Demo] = Field(description="rotate a volume in a temporary directory")

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


# read by the package beside the commands' options: ``show``'s key (which may be set for
# ``kubectl exec ... secretwatch show`` in the sidecar's container), and the variables the
# sidecar gives an --exec command (which may run secretwatch itself)
PACKAGE_VARIABLES = frozenset(
    {
        FINGERPRINT_KEY_VARIABLE,
        "SECRETWATCH_PATH",
        "SECRETWATCH_VERSION",
        "SECRETWATCH_CHANGED_KEYS",
    }
)
# configured by manifests, where a variable they don't read leaves a sidecar misconfigured:
# they refuse the variables of other commands too (the others, run from a shell or by
# kubectl exec in such a container, refuse only what no command reads)
STRICT_COMMANDS = frozenset({"watch", "run"})


def _variables(command: str) -> tuple[frozenset[str], dict[str, list[str]]]:
    """The variables ``command`` reads, and the other commands' (-> those commands)."""
    read_by: dict[str, list[str]] = {}
    for name, model in command_models(Cli).items():
        for option, info in model.model_fields.items():
            read_by.setdefault(ENV_PREFIX + (info.alias or option).upper(), []).append(name)
    if command not in STRICT_COMMANDS:
        return PACKAGE_VARIABLES | set(read_by), {}
    own = {variable for variable, commands in read_by.items() if command in commands}
    others = {variable: commands for variable, commands in read_by.items() if variable not in own}
    return PACKAGE_VARIABLES | own, others


def _sidecar_module(name: str) -> ModuleType:
    """A command of the sidecar, which needs the ``sidecar`` extra (httpx, prometheus_client)."""
    try:
        return importlib.import_module(f"secretwatch._cli.sidecar.{name}")
    except ModuleNotFoundError as exc:
        raise SystemExit(
            f"secretwatch {name} needs the sidecar extra ({exc.name} is not installed): "
            "pip install 'path/to/secretwatch[sidecar]' (a checkout: it is not on PyPI yet)"
        ) from None


def cli(*args: str) -> int:
    """Run the command line with ``args`` (without the program name); return the exit code."""
    configure_logging("console")
    arguments, command = _split_child_command(list(args))
    token = _child_command.set(tuple(command))
    arguments, hidden = hide_values(arguments)  # secret values never reach the parser
    try:
        # before the options are read: a misspelt variable is what explains what follows
        # (a watch with "no action" when a misspelt variable was meant to give one)
        name = next((argument for argument in arguments if argument[:1] != "-"), "")
        if name in Cli.model_fields:
            refuse_unknown_variables(os.environ, name, *_variables(name))
        with hidden_values(hidden):
            CliApp.run(Cli, cli_args=arguments, cli_settings_source=command_line(Cli))
    except UsageError as exc:  # names options and variables, never a value
        print(f"secretwatch: {exc.message}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # bad option values: say which, never quote them
        for line in _option_errors(exc, arguments):
            print(f"secretwatch: {line}", file=sys.stderr)
        return 2
    except SettingsError:  # pydantic-settings' own, which may quote what it parsed
        print(
            "secretwatch: invalid arguments (not shown: they may hold secret values); "
            "see secretwatch --help",
            file=sys.stderr,
        )
        return 2
    except SystemExit as exit_:
        if isinstance(exit_.code, str):  # a message for the user, as the interpreter prints it
            print(exit_.code, file=sys.stderr)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        _child_command.reset(token)
    return 0


def _split_child_command(arguments: list[str]) -> tuple[list[str], list[str]]:
    """``run``'s arguments and the command after its ``--``, which the parser must not see
    (it would take the command's options for run's)."""
    command = next((at for at, argument in enumerate(arguments) if argument[:1] != "-"), None)
    if command is None or arguments[command] != "run" or "--" not in arguments[command:]:
        return arguments, []
    split = arguments.index("--", command)
    return arguments[:split], arguments[split + 1 :]


def _option_errors(exc: ValidationError, arguments: list[str]) -> list[str]:
    """``--option: message`` lines (``SECRETWATCH_<OPTION>: message`` for an option that is
    not on the command line), without the input (a webhook URL holds credentials)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        # the location is (command, option, ...): an error of the whole command has no option
        fields = [str(part) for part in error["loc"] if not isinstance(part, int)][1:]
        where = ""
        if fields:
            option = "--" + fields[0].replace("_", "-")
            given = any(argument.partition("=")[0] == option for argument in arguments)
            where = f"{option}: " if given else f"{ENV_PREFIX}{fields[0].upper()}: "
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}{message}")
    return lines


def main() -> None:
    """Console-script entry point."""
    raise SystemExit(cli(*sys.argv[1:]))
