"""The command line's reference page, made from the models that make ``--help``.

The documentation site's hook (``docs/_hooks/reference.py``) puts :func:`reference` in
place of a marker, so the page and ``--help`` can't drift apart: both read each option's
name, metavar, default and description from the same pydantic fields.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings.sources.types import _CliPositionalArg

from secretwatch._cli.config import ENV_PREFIX
from secretwatch._cli.helptext import command_models, default_text, metavar
from secretwatch._cli.main import Cli, cli

__all__ = ["reference"]


def reference() -> str:
    """Markdown: per command, its usage, a table of options and variables, and its help."""
    sections = []
    for command, model in command_models(Cli).items():
        sections.append(_command(command, model))
    return "\n\n".join(sections) + "\n"


def _command(command: str, model: type[BaseModel]) -> str:
    lines = [f"## `secretwatch {command}`", "", _first_paragraph(model), ""]
    usage = getattr(model, "cli_usage", None)
    if usage:
        lines += ["```text", usage, "```", ""]
    fields = model.model_fields.items()  # a positional first, though a base class's come first
    rows = [_row(*item) for item in sorted(fields, key=lambda item: not _positional(item[1]))]
    if rows:
        lines += [
            "| option, and its variable | default | meaning |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    help_text = _help(command).rstrip().replace("\n", "\n    ")
    lines += [
        f'??? example "`secretwatch {command} --help`"',
        "",
        "    ```text",
        f"    {help_text}",
        "    ```",
    ]
    return "\n".join(lines)


def _first_paragraph(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())


def _row(name: str, field: FieldInfo) -> str:
    option = field.alias or name
    if _positional(field):
        shown = f"`{metavar(option, field, option.upper())}`"
    else:
        flag = "--" + option.replace("_", "-")
        is_flag = field.annotation is bool
        shown = f"`{flag}`" if is_flag else f"`{flag} {metavar(option, field, _choices(field))}`"
    variable = f"`{ENV_PREFIX}{option.upper()}`"
    default = default_text(field)
    meaning = (field.description or "").replace("|", "\\|")
    return f"| {shown}<br>{variable} | {'`' + default + '`' if default else ''} | {meaning} |"


def _positional(field: FieldInfo) -> bool:
    return _CliPositionalArg in field.metadata


def _choices(field: FieldInfo) -> str:
    """``{json,console}`` for a ``Literal`` (as pydantic-settings makes it), else empty."""
    for annotation in (field.annotation, *get_args(field.annotation)):
        if get_origin(annotation) is Literal:
            return "{" + ",".join(str(choice) for choice in get_args(annotation)) + "}"
    return ""


def _help(command: str) -> str:
    output = io.StringIO()
    with _columns(HELP_WIDTH), contextlib.redirect_stdout(output):
        cli(command, "--help")
    return output.getvalue()


HELP_WIDTH = 88  # argparse wraps to the terminal's width: the page's is fixed


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse reads the width from ``COLUMNS``; set it while the help is made."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before
