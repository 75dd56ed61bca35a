"""``--help`` reads like a well-kept command line: what to pass, each default once, examples."""

from __future__ import annotations

import re

import pytest

from secretwatch._cli.main import cli

COMMANDS = ("run", "watch", "show", "rotate", "status", "create", "list", "delete", "demo")
# what pydantic-settings writes by itself: type names as metavars, defaults as Python sees them
PYTHON_TYPES = re.compile(
    r"\b(str|int|float|bool)\b|list\[|default factory|\(default: (null|None|False|True|\[\])\)"
)


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """The help of ``command`` (the root's without one), 100 columns wide."""
    assert cli(*command, "--help") == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def entries(text: str) -> dict[str, str]:
    """Each option's entry in a help text: its first option string -> the entry (the
    option strings, the metavar and the help, over all its lines)."""
    found = re.findall(r"^  (-\S.*?)(?=^  \S|^\S|\Z)", text, flags=re.MULTILINE | re.DOTALL)
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in found}


@pytest.fixture(autouse=True)
def _columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")


@pytest.mark.parametrize("command", [(), *((name,) for name in COMMANDS)], ids=str)
def test_no_python_type_and_each_default_once(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    """No Python type name or generated default in the help; no option says its default
    twice."""
    text = help_of(capsys, *command)
    assert not PYTHON_TYPES.search(text), PYTHON_TYPES.search(text)
    for option, entry in entries(text).items():
        assert entry.count("(default") <= 1, option


@pytest.mark.parametrize(
    ("command", "invocations"),
    [
        (
            "watch",
            [
                "--webhook URL",
                "--webhook-file PATH",
                "--webhook-timeout SECONDS",
                "--webhook-retries N",
                "--debounce SECONDS",
                "--max-bytes BYTES",
                "--signal SIGNAL",
                "--pid-file PATH",
                "--process-name NAME",
                "--exec COMMAND",
                "--exec-timeout SECONDS",
                "--listen HOST:PORT",
                "--log-level {debug,info,warning,error}",
                "--no-action",
            ],
        ),
        ("run", ["--on-change {restart,signal:NAME}", "--grace SECONDS", "--listen HOST:PORT"]),
        ("show", ["--max-bytes BYTES", "--json"]),
        ("rotate", ["--set KEY=VALUE", "--set-file KEY=PATH", "--label KEY=VALUE"]),
        ("rotate", ["--resource-group NAME", "--timeout SECONDS", "--wait"]),
    ],
)
def test_metavars_say_what_to_pass(
    capsys: pytest.CaptureFixture[str], command: str, invocations: list[str]
) -> None:
    """Each option shows what to give it (``URL``, ``SECONDS``...); a flag shows nothing,
    and has no ``--no-`` twin."""
    found = entries(help_of(capsys, command))
    for invocation in invocations:
        option = invocation.split()[0]
        assert found[option].startswith(f"{invocation} "), found[option]
    assert not [
        option for option in found if option.startswith("--no-") and option != "--no-action"
    ]


def test_defaults_are_said_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """Defaults as a person writes them; none where there is nothing to say."""
    found = entries(help_of(capsys, "watch"))
    assert found["--debounce"].endswith("(default: 0.1)")
    assert found["--max-bytes"].endswith("(default: 1 MiB)")
    assert found["--webhook-timeout"].endswith("(default: 5)")
    assert found["--log-format"].endswith(
        "(default: json when stdout is not a terminal, else console)"
    )
    for option in ("--webhook", "--signal", "--listen", "--once", "--polling", "--exec"):
        assert "(default" not in found[option], option


def test_run_shows_the_command_after_a_double_dash(capsys: pytest.CaptureFixture[str]) -> None:
    """``run``'s usage line shows where its command goes."""
    text = help_of(capsys, "run")
    assert text.startswith("usage: secretwatch run [OPTIONS] PATH... -- COMMAND [ARG...]\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_ends_with_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """Each command's help ends with examples of it."""
    text = help_of(capsys, command)
    examples = text.rpartition("\nexample")[2]
    assert examples.startswith((":\n", "s:\n")), text
    lines = examples.splitlines()[1:]
    assert lines
    assert all(f"secretwatch {command}" in line for line in lines), lines


def test_the_root_help_lists_the_commands_and_the_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``secretwatch --help``: every command, ``--version``, and examples."""
    text = help_of(capsys)
    assert text.startswith("usage: secretwatch [--version] [-h] COMMAND [OPTIONS] [ARG...]\n")
    assert "--version" in entries(text)
    for command in COMMANDS:
        assert re.search(rf"^    {command} ", text, flags=re.MULTILINE), command
    assert "\nexamples:\n  secretwatch demo\n" in text
