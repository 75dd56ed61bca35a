"""The command line as pydantic-settings builds it, with help that reads like a kept CLI.

pydantic-settings makes an option of each field (and reads the same field from
``SECRETWATCH_*``); its help shows Python types as metavars (``list[str]``, ``float``) and
adds defaults of its own (``(default factory: list)``, ``(default: null)``). Through the
hooks a :class:`CliSettingsSource` takes (its documented ``root_parser``,
``parse_args_method``, ``add_argument_method``, ``add_parser_method`` and
``formatter_class``), :func:`command_line` gives it:

- a root :class:`~secretwatch._cli.usage.Parser` (errors without values, ``--version``);
- each option's metavar from its field's ``json_schema_extra={"metavar": ...}`` (else the
  choices of a ``Literal``, else the option's name in capitals), and its help from the
  field's description with the default said once (:func:`default_text`), or not at all
  when it is "none", "off" or "empty";
- each command's usage line and an examples epilog from the model's ``cli_usage`` and
  ``cli_examples`` class variables.
"""

from __future__ import annotations

import argparse
from argparse import Action, Namespace, RawDescriptionHelpFormatter
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, CliSettingsSource

import secretwatch
from secretwatch._cli.usage import Parser, parse

__all__ = ["command_line", "command_models", "default_text", "metavar"]


class _Version(Action):
    """``--version``: the installed distribution's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: Any):
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"secretwatch {secretwatch.__version__}")
        parser.exit()


def command_models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The commands of ``root``, whose fields are its commands: name -> model."""
    return {
        name: next(model for model in get_args(field.annotation) if model is not type(None))
        for name, field in root.model_fields.items()
    }


def command_line(root: type[BaseSettings]) -> CliSettingsSource[Parser]:
    """The settings source of ``root``, whose fields are the commands (``CliSubCommand``)."""
    commands = command_models(root)
    parser = Parser(
        prog="secretwatch",
        usage=getattr(root, "cli_usage", None),
        description=root.__doc__,
        epilog=getattr(root, "cli_examples", None),
        formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)

    def add_parser(subparsers: Any, name: str, **kwargs: Any) -> Parser:
        model = commands[name]
        kwargs["usage"] = getattr(model, "cli_usage", None)
        kwargs["epilog"] = getattr(model, "cli_examples", None)
        command: Parser = subparsers.add_parser(name, **kwargs)
        parser.commands[name] = command
        return command

    def add_argument(target: Parser, *names: str, **kwargs: Any) -> Action:
        command, _, alias = str(kwargs.get("dest", names[0])).partition(".")
        fields = commands[command].model_fields
        field = next(info for name, info in fields.items() if (info.alias or name) == alias)
        if "metavar" in kwargs:  # flags have none
            kwargs["metavar"] = metavar(alias, field, kwargs["metavar"])
        description = field.description or ""
        default = default_text(field)
        text = f"{description} (default: {default})" if default else description
        kwargs["help"] = text.replace("%", "%%")  # argparse formats help with %
        action: Action = target.add_argument(*names, **kwargs)
        return action

    return CliSettingsSource(
        root,
        root_parser=parser,
        parse_args_method=parse,
        add_argument_method=add_argument,
        add_parser_method=add_parser,
        formatter_class=RawDescriptionHelpFormatter,
    )


def metavar(name: str, field: FieldInfo, generated: str) -> str:
    """What to pass to an option: its field's ``metavar``; else the choices pydantic-settings
    made of a ``Literal`` (``{json,console}``); else the option's name in capitals."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("metavar"), str):
        return str(extra["metavar"])
    if generated.startswith("{"):
        return generated
    return name.upper().replace("_", "-")


def default_text(field: FieldInfo) -> str | None:
    """A field's default as the help says it, or ``None`` when there is nothing to say: no
    default, ``None``, ``False`` (a flag that is off) or an empty list. Numbers as written
    (``0.1``, ``60``); a whole number of KiB or MiB as such when the metavar is ``BYTES``."""
    if field.is_required():
        return None
    value = field.get_default(call_default_factory=True)
    if value is None or value is False or value == [] or isinstance(value, BaseModel):
        return None
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("metavar") == "BYTES" and isinstance(value, int):
        for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= size and value % size == 0:
                return f"{value // size} {unit}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
