"""Usage errors that name options and variables, never a value.

The command line is parsed by argparse (through pydantic-settings), whose messages quote
what they could not parse (``invalid choice: 'http://user:password@host/'``,
``unrecognized arguments: ...``, ``ignored explicit argument '...'``). Here:

- :class:`Parser`, the argparse parser of every command, raises :class:`UsageError` instead
  of printing, and keeps the names of its options;
- :func:`parse` first reads the arguments as argparse will, to name every unknown option
  (with the closest real one, by :mod:`difflib`) before anything else is said, then parses;
  an argparse error is said in words of our own: the option's name and what is wrong, the
  arguments never (:func:`_withheld`);
- :func:`refuse_unknown_variables`: a ``SECRETWATCH_*`` variable that the command does not
  read is a typo in a manifest (or meant for another command), named with the closest real
  one, never with its value.

What is printed is built from the parser's own names only; a message argparse may write
that is not known to hold names only is replaced by a generic one.
"""

from __future__ import annotations

import re
from argparse import ArgumentError, ArgumentParser, Namespace
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from secretwatch._cli.config import ENV_PREFIX
from secretwatch._read.names import escaped

__all__ = ["Parser", "UsageError", "parse", "refuse_unknown_variables"]

ROOT_OPTIONS = frozenset({"-h", "--help", "--version"})
NOT_SHOWN = "not shown: it may hold a secret value"

# argparse reads args like -1 or -.5 as arguments, not options
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
# what an option's name is made of: anything else in its place is not printed
_OPTION_NAME = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_.-]*")
# argparse's messages that hold nothing but the parser's own names
_NAMES_ONLY = re.compile(
    r"the following arguments are required: .*"
    r"|one of the arguments .* is required"
    r"|not allowed with argument .*"
    r"|expected (at least |at most )?(one|\d+) arguments?"
)


class UsageError(Exception):
    """A mistake in the command line or the environment: one line, naming options and
    variables, never a value. The command line exits 2."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Parser(ArgumentParser):
    """An argparse parser that raises :class:`UsageError` rather than exiting, and knows its
    options (:attr:`options`) and its commands' parsers (:attr:`commands`)."""

    def __init__(self, **kwargs: Any):
        self.options: set[str] = set()
        self.commands: dict[str, Parser] = {}
        super().__init__(**{**kwargs, "exit_on_error": False, "allow_abbrev": False})

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        """Add an argument, as argparse does, and keep its option strings."""
        action = super().add_argument(*args, **kwargs)
        self.options.update(action.option_strings)
        return action

    def error(self, message: str) -> NoReturn:
        """argparse's own errors, said without what they quote."""
        raise UsageError(_withheld(None, message))


def parse(parser: Parser, args: Sequence[str]) -> Namespace:
    """Parse ``args`` with ``parser`` (the root of the commands), as pydantic-settings'
    ``parse_args_method``.

    Raises:
        UsageError: an unknown option (named), a missing or unknown command, or an
            argument argparse refused; never quoting an argument.
    """
    arguments = list(args)
    command = _refuse_unknown_options(parser, arguments)
    try:
        namespace, extra = parser.parse_known_args(arguments)
    except ArgumentError as exc:
        raise UsageError(_withheld(exc.argument_name, exc.message)) from None
    if extra:  # arguments that no positional takes (none is an option: see above)
        count = f"{len(extra)} argument" + ("s" if len(extra) > 1 else "")
        raise UsageError(
            f"{command}: {count} too many ({NOT_SHOWN}); see secretwatch {command} --help"
        )
    return namespace


def _refuse_unknown_options(root: Parser, args: list[str]) -> str:
    """The command's name, once every option is known to the parser it goes to (the root's
    before the command, the command's after it, up to ``--``)."""
    at = 0
    while at < len(args) and args[at] != "--" and _reads_as(args[at], root.options) != "argument":
        at += 1
    unknown = [token for token in args[:at] if _reads_as(token, root.options) == "unknown"]
    if unknown:
        raise UsageError(_before_the_command(unknown, root))
    if at == len(args) or args[at] == "--":
        if set(args[:at]) & ROOT_OPTIONS:
            return ""  # --help or --version: argparse answers, and exits
        raise UsageError(f"give a command: {', '.join(root.commands)} (see secretwatch --help)")
    command = args[at]
    parser = root.commands.get(command)
    if parser is None:  # maybe a value given to an option before it: not printed
        guess = _closest(command, root.commands)
        hint = f"did you mean {guess}? " if guess else ""
        raise UsageError(f"unknown command ({NOT_SHOWN}); {hint}see secretwatch --help")
    tail = args[at + 1 :]
    tail = tail[: tail.index("--")] if "--" in tail else tail  # then only arguments
    unknown = [token for token in tail if _reads_as(token, parser.options) == "unknown"]
    if unknown:
        raise UsageError(_after_the_command(unknown, command, root))
    return command


def _reads_as(token: str, options: Collection[str]) -> str:
    """How argparse reads ``token`` where ``options`` are known: ``"argument"``,
    ``"option"`` or ``"unknown"`` (an option it does not know)."""
    if len(token) < 2 or token[0] != "-":
        return "argument"
    name = token.partition("=")[0] if token.startswith("--") else token[:2]
    if token in options or name in options:  # a short one may have its value attached
        return "option"
    if _NEGATIVE_NUMBER.match(token) or " " in token:
        return "argument"
    return "unknown"


def _printable(token: str) -> str | None:
    """The name of an unknown option as it may be printed: a long option's part before
    ``=``, or a lone short one (``-v``); ``None`` when it may be a value that starts with
    a dash (``-`` and a password, after an option that takes a value)."""
    name = token.partition("=")[0]
    if _OPTION_NAME.fullmatch(name) and (name.startswith("--") or len(token) == 2):
        return name
    return None


def _before_the_command(tokens: list[str], root: Parser) -> str:
    """What is wrong with the unknown options given before the command."""
    problems = []
    every = set(root.options).union(*(parser.options for parser in root.commands.values()))
    for name in dict.fromkeys(map(_printable, tokens)):
        if name is None:
            problems.append(_DASHED)
            continue
        owners = [command for command, parser in root.commands.items() if name in parser.options]
        if owners:
            problems.append(f"{name} goes after the command (an option of {' and '.join(owners)})")
            continue
        guess = _closest(name, every)
        problems.append(f"unknown option {name}" + (f" (did you mean {guess}?)" if guess else ""))
    return "; ".join(problems) + "; see secretwatch --help"


def _after_the_command(tokens: list[str], command: str, root: Parser) -> str:
    """What is wrong with the unknown options given to ``command``: each named, with the
    closest of its options, or the commands that have it."""
    names = list(dict.fromkeys(map(_printable, tokens)))
    described = []
    for name in names:
        if name is None:
            continue
        owners = [other for other, parser in root.commands.items() if name in parser.options]
        guess = _closest(name, root.commands[command].options)
        if owners:
            described.append(f"{name} (an option of {' and '.join(owners)})")
        else:
            described.append(f"{name} (did you mean {guess}?)" if guess else name)
    problems = []
    if described:
        options = "options" if len(described) > 1 else "option"
        problems.append(f"{command} has no {options} {' and '.join(described)}")
    if None in names:
        problems.append(f"{command}: {_DASHED}")
    return "; ".join(problems) + f"; see secretwatch {command} --help"


_DASHED = (
    "an unknown option that starts with a single dash (not shown, as it may be a value: "
    "write a value that starts with - as --option=VALUE)"
)


def _closest(name: str, names: Iterable[str]) -> str | None:
    """The real name most like ``name``, if one is close."""
    import difflib  # noqa: PLC0415 (only on an error: start-up stays cheap)

    matches = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _withheld(argument: str | None, message: str) -> str:
    """argparse's ``message`` about ``argument``, without the arguments it may quote."""
    name = (argument or "").partition("/")[0]  # "--polling/--no-polling" -> "--polling"
    if message == "expected one argument":
        return f"{name} needs a value"
    if message.startswith("ignored explicit argument"):
        return f"{name} takes no value"
    if _NAMES_ONLY.fullmatch(message):
        return f"{name}: {message}" if name else message
    if name:
        return f"{name}: invalid ({NOT_SHOWN})"
    return "invalid arguments (not shown: they may hold secret values); see secretwatch --help"


# What Kubernetes sets in every pod of a namespace with a Service called ``secretwatch``
# (``enableServiceLinks``, on by default): SECRETWATCH_SERVICE_HOST, SECRETWATCH_SERVICE_PORT
# (and _<PORT NAME>), SECRETWATCH_PORT, SECRETWATCH_PORT_9090_TCP (and _PROTO, _PORT, _ADDR).
# A Service of that name is a natural way to scrape the sidecar's metrics: not a typo.
_SERVICE_LINK = re.compile(
    r"SECRETWATCH_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)"
    r"\Z"
)


def refuse_unknown_variables(
    environ: Iterable[str], command: str, read: Collection[str], others: Mapping[str, list[str]]
) -> None:
    """Refuse a ``SECRETWATCH_*`` variable of ``environ`` that ``command`` does not read.

    ``read``: the variables that ``command`` (or the package) reads; ``others``: variables
    of other commands (-> their names), which ``command`` does not read. Names are compared
    upper-cased, as pydantic-settings reads them; a value is never read here.

    Raises:
        UsageError: each unknown variable named, with the closest one ``command`` reads.
    """
    problems = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in read or _SERVICE_LINK.match(upper):
            continue
        name = escaped(variable)
        if upper in others:
            *most, last = others[upper]  # "show, rotate and status"
            owners = f"{', '.join(most)} and {last}" if most else last
            problems.append(f"{name} is read by {owners}, not by {command}")
            continue
        guess = _closest(upper, read)
        hint = f" (did you mean {guess}?)" if guess else ""
        problems.append(f"unknown variable {name}{hint}")
    if problems:
        raise UsageError("; ".join(problems) + " (values not shown)")
