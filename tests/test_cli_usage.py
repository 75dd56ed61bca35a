"""Usage errors: an option's name is said (with the closest real one), a value never is."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import secretwatch
from secretwatch._cli.aicore import Rotate, Status
from secretwatch._cli.main import Demo, Run, Show, Watch, cli
from secretwatch._cli.pairs import hide_values

CANARY = "CANARY-5ee1"
COMMANDS: dict[str, type[BaseModel]] = {
    "run": Run,
    "watch": Watch,
    "show": Show,
    "rotate": Rotate,
    "status": Status,
    "demo": Demo,
}
POSITIONAL = {"paths", "path", "name"}  # the fields given as arguments, not options


def options_of(model: type[BaseModel]) -> set[str]:
    """The long options of a command, from its model's fields."""
    return {
        "--" + (field.alias or name).replace("_", "-")
        for name, field in model.model_fields.items()
        if name not in POSITIONAL
    }


OPTIONS = {name: options_of(model) for name, model in COMMANDS.items()}
REAL = sorted(set().union(*OPTIONS.values()) | {"-h", "--help", "--version"})


@contextlib.contextmanager
def no_command_runs(env: dict[str, str]) -> Iterator[list[BaseModel]]:
    """Commands are parsed and validated for real, but what they do is not done: each
    command's ``cli_cmd`` records the command instead. The ``SECRETWATCH_*`` variables are
    ``env``'s, not the test's environment's."""
    ran: list[BaseModel] = []
    with pytest.MonkeyPatch.context() as patch:
        for model in COMMANDS.values():
            patch.setattr(model, "cli_cmd", ran.append)
        for name in os.environ:
            if name.upper().startswith("SECRETWATCH_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        yield ran


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``cli(*args)`` in this process, with ``env``: the exit code, stdout and stderr; the
    exit code is ``None`` when the command was accepted (it would have run)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        no_command_runs(env or {}) as ran,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code: int | None = cli(*args)
    if code == 0 and ran:
        code = None
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "args",
    [
        ["--webhook", "http://u:PW123@h/", "watch", "/etc"],
        ["--webhook=http://u:PW123@h/", "watch", "/etc"],
        ["--password=PW123"],
        ["watch", "/etc", "--webhok", "http://u:PW123@h/"],
        ["watch", "/etc", "--webhok=http://u:PW123@h/"],
        ["watch", "/etc", "--polling=PW123"],
        ["watch", "/etc", "-hPW123"],
        ["show", "/etc", "PW123"],
        ["rotate", "x", "--tenant-wide", "--set", "a=b", "--bogus", "PW123"],
        ["status", "x", "--tenant-wide", "--resource-group=g", "--jsn=PW123"],
        ["PW123", "watch"],
        ["--", "PW123"],
    ],
)
def test_a_usage_error_never_quotes_an_argument(args: list[str]) -> None:
    """Wherever a value stands, a usage error exits 2 with one line that does not quote it."""
    code, out, err = run_cli(*args)
    assert code == 2
    assert "PW123" not in out + err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("secretwatch: ")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--webhook", "http://u:PW123@h/", "watch", "/etc"], "--webhook goes after the command"),
        (["--password=PW123"], "unknown option --password"),
        (["watch", "vol", "--webhok", "http://x/"], "watch has no option --webhok"),
        (["watch", "vol", "--webhok=http://x/"], "did you mean --webhook?"),
        (["show", "vol", "--webhook", "http://x/"], "show has no option --webhook"),
        (["watch", "vol", "--lisen", ":9", "--onse"], "--lisen (did you mean --listen?)"),
        (["watch", "vol", "--lisen", ":9", "--onse"], "--onse (did you mean --once?)"),
        (["--versoin"], "did you mean --version?"),
        (["wacth", "vol"], "did you mean watch?"),
        (["watch", "vol", "--webhook"], "--webhook needs a value"),
        (["watch", "vol", "--polling=yes"], "--polling takes no value"),
        (["show"], "the following arguments are required: PATH"),
        ([], "give a command"),
    ],
)
def test_a_usage_error_names_the_option(args: list[str], said: str) -> None:
    """An unknown or misused option is named, with the closest real one; exit 2."""
    code, _, err = run_cli(*args)
    assert code == 2
    assert said in err


def test_version_comes_from_the_installed_package() -> None:
    """``secretwatch --version`` prints the installed distribution's version and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "secretwatch", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"secretwatch {secretwatch.__version__}\n",
        "",
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", secretwatch.__version__)


def test_no_message_suggests_help_after_a_wrong_option() -> None:
    """A message about a wrong option never offers it back followed by ``--help``."""
    for args in (["--version", "watch"], ["--versoin"], ["watch", "--versoin"], ["--bogus"]):
        _, out, err = run_cli(*args)
        for wrong in ("--version", "--versoin", "--bogus"):
            assert f"{wrong} --help" not in out + err


# the property: random argument lists of real and misspelt options, commands and values
VALUES = st.sampled_from(
    [
        CANARY,
        f"http://user:{CANARY}@127.0.0.1:9/reload",
        f"key={CANARY}",
        f"{CANARY},http://127.0.0.1:9/",
        f"-{CANARY}",
        f"{CANARY} with spaces",
        f"[{CANARY}",
        "",
    ]
)


@st.composite
def misspellings(draw: st.DrawFn) -> str:
    """A real long option with one character deleted, doubled or swapped (after ``--``)."""
    name = draw(st.sampled_from([option for option in REAL if option.startswith("--")]))
    at = draw(st.integers(3, len(name) - 1))
    edit = draw(st.sampled_from(["delete", "double", "swap"]))
    if edit == "delete":
        return name[:at] + name[at + 1 :]
    if edit == "double":
        return name[:at] + name[at] + name[at:]
    return name[: at - 1] + name[at] + name[at - 1] + name[at + 1 :]


MISSPELT = misspellings().filter(lambda name: name not in REAL)


def option_items() -> st.SearchStrategy[list[str]]:
    """An option alone, followed by a value, or with ``=value``; real or misspelt."""
    name = st.one_of(st.sampled_from(REAL), MISSPELT)
    return st.one_of(
        name.map(lambda option: [option]),
        st.tuples(name, VALUES).map(list),
        st.tuples(name, VALUES).map(lambda pair: [f"{pair[0]}={pair[1]}"]),
    )


COMMAND = st.one_of(
    st.sampled_from(sorted(COMMANDS)),
    st.sampled_from(["wacth", "rnu", "sohw", "rotat"]),
    VALUES,
)
TAIL_ITEMS = st.one_of(
    option_items(),
    VALUES.map(lambda value: [value]),
    st.just(["--"]),
    st.sampled_from(sorted(COMMANDS)).map(lambda command: [command]),
)


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    before = draw(st.lists(option_items(), max_size=2))
    command = draw(st.one_of(st.none(), COMMAND))
    tail = draw(st.lists(TAIL_ITEMS, max_size=6))
    return [
        *(token for item in before for token in item),
        *([command] if command is not None else []),
        *(token for item in tail for token in item),
    ]


def option_like(token: str) -> bool:
    """A token that argparse takes for an option (a negative number or a text with a space
    is an argument)."""
    return len(token) > 1 and token[0] == "-" and " " not in token and not token[1:2].isdigit()


def unknown_options_named(args: list[str]) -> list[str]:
    """The misspelt options that the message must name: those before the command, and when
    the command is real and nothing stands before it, those after it (up to ``--``). The
    values of ``--set``, ``--set-file`` and ``--label`` are hidden before anything else."""
    shown, _ = hide_values(args)
    before = []
    for token in shown:
        if token == "--" or not option_like(token):
            break
        before.append(token)
    rest = shown[len(before) :]
    named = before
    roots = {"-h", "--help", "--version"}
    if all(token in roots for token in before) and rest and rest[0] in COMMANDS:
        tail = rest[1 : rest.index("--")] if "--" in rest else rest[1:]
        named += [token for token in tail if option_like(token)]
    names = [token.partition("=")[0] for token in named if token.startswith("--")]
    return [name for name in names if name not in REAL]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(argument_lists())
def test_no_argument_list_makes_a_value_show(args: list[str]) -> None:
    """For any list of real and misspelt options, commands and values: no value is ever
    printed, a usage error exits 2 with a message, and every unknown option is named."""
    code, out, err = run_cli(*args)
    assert CANARY not in out + err
    assert "Traceback" not in out + err
    assert code in (None, 0, 2), (code, err)
    if code == 2:
        assert err.startswith("secretwatch"), err
    for name in unknown_options_named(args):
        assert code == 2
        assert name in err, (name, err)


# SECRETWATCH_* variables: a typo in a manifest is refused, naming it, never its value


@pytest.mark.parametrize(
    ("args", "variable", "said"),
    [
        (
            ["watch", "v", "--no-action"],
            "SECRETWATCH_WEBHOK",
            "(did you mean SECRETWATCH_WEBHOOK?)",
        ),
        (
            ["watch", "v", "--no-action"],
            "secretwatch_webhok",
            "unknown variable secretwatch_webhok",
        ),
        (["run", "v", "--", "true"], "SECRETWATCH_ONCE", "is read by watch, not by run"),
        (
            ["watch", "v", "--no-action"],
            "SECRETWATCH_JSON",
            "is read by show, rotate, status, create, list and delete, not by",
        ),
        (["show", "v"], "SECRETWATCH_WEBHOK", "(did you mean SECRETWATCH_WEBHOOK?)"),
        # the action the misspelt variable meant to give is missing: the variable is named
        (["watch", "v"], "SECRETWATCH_WEBHOK", "(did you mean SECRETWATCH_WEBHOOK?)"),
        (["status", "n", "--tenant-wide"], "SECRETWATCH_TENANTWIDE", "SECRETWATCH_TENANT_WIDE?"),
    ],
)
def test_an_unknown_variable_is_refused(args: list[str], variable: str, said: str) -> None:
    """A ``SECRETWATCH_*`` variable the command does not read: exit 2, one line naming it
    (and the closest real one), never its value."""
    code, out, err = run_cli(*args, env={variable: f"http://u:{CANARY}@h/"})
    assert code == 2
    assert said in err
    assert variable in err
    assert len(err.splitlines()) == 1
    assert CANARY not in out + err


@pytest.mark.parametrize(
    ("args", "variable"),
    [
        (["show", "v"], "SECRETWATCH_WEBHOOK"),  # kubectl exec in the sidecar's container
        (["show", "v"], "SECRETWATCH_FINGERPRINT_KEY"),
        (["watch", "v", "--no-action"], "SECRETWATCH_FINGERPRINT_KEY"),  # for show, there
        (["watch", "v", "--no-action"], "SECRETWATCH_PATH"),  # what --exec commands are given
        (["watch", "v", "--no-action"], "SECRETWATCH_VERSION"),
        (["watch", "v", "--no-action"], "SECRETWATCH_CHANGED_KEYS"),
        (["watch", "v", "--no-action"], "secretwatch_polling"),
        (["run", "v", "--", "true"], "SECRETWATCH_GRACE"),
        (["demo"], "SECRETWATCH_LISTEN"),
        # Kubernetes' service links, in every pod of a namespace with a Service "secretwatch"
        (["watch", "v", "--no-action"], "SECRETWATCH_SERVICE_HOST"),
        (["watch", "v", "--no-action"], "SECRETWATCH_SERVICE_PORT"),
        (["watch", "v", "--no-action"], "SECRETWATCH_SERVICE_PORT_METRICS"),
        (["watch", "v", "--no-action"], "SECRETWATCH_PORT"),
        (["watch", "v", "--no-action"], "SECRETWATCH_PORT_9090_TCP"),
        (["watch", "v", "--no-action"], "SECRETWATCH_PORT_9090_TCP_ADDR"),
    ],
)
def test_a_variable_the_package_reads_is_accepted(args: list[str], variable: str) -> None:
    """The command's own variables, and those the package reads or sets, are not refused;
    nor, where a shell runs it, another command's."""
    code, _, err = run_cli(*args, env={variable: "1"})
    assert code is None, err


def test_every_variable_the_package_names_is_known() -> None:
    """Each ``SECRETWATCH_*`` name written in the package's source is accepted by some
    command: a new variable read outside the commands' options must be added to the check."""
    package = Path(secretwatch.__file__).parent
    names = {
        name
        for path in package.rglob("*.py")
        for name in re.findall(r"\bSECRETWATCH_[A-Z][A-Z_]*\b", path.read_text())
    }
    assert {"SECRETWATCH_POLLING", "SECRETWATCH_FINGERPRINT_KEY", "SECRETWATCH_PATH"} <= names
    for name in sorted(names):
        code, _, err = run_cli("show", "v", env={name: "1"})
        assert code is None, (name, err)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("SECRETWATCH_WEBHOOK", f"ftp://u:{CANARY}@h/", "SECRETWATCH_WEBHOOK: each webhook must"),
        ("SECRETWATCH_SIGNAL", "HUP", "--signal needs exactly one of --pid-file and"),
        ("SECRETWATCH_DEBOUNCE", CANARY, "SECRETWATCH_DEBOUNCE: Input should be a valid number"),
    ],
)
def test_a_bad_value_from_the_environment_names_its_variable(
    variable: str, value: str, said: str
) -> None:
    """A bad value from a ``SECRETWATCH_*`` variable: exit 2, naming the variable (not an
    option that is not on the command line), never quoting the value."""
    code, out, err = run_cli("watch", "v", "--exec", "true", env={variable: value})
    assert code == 2
    assert f"secretwatch: {said}" in err
    assert CANARY not in out + err


def test_a_typo_in_a_manifest_stops_the_sidecar_at_start(tmp_path: Path) -> None:
    """``SECRETWATCH_WEBHOK`` (a manifest's typo): the sidecar exits 2 before loading the
    volume, instead of watching and never reloading anything."""
    env = {**os.environ, "SECRETWATCH_WEBHOK": f"http://u:{CANARY}@127.0.0.1:9/"}
    done = subprocess.run(
        [sys.executable, "-m", "secretwatch", "watch", str(tmp_path), "--exec", "true"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "secretwatch: unknown variable SECRETWATCH_WEBHOK (did you mean SECRETWATCH_WEBHOOK?)"
        " (values not shown)\n"
    )


def test_json_comes_from_its_prefixed_variable_only(tmp_path: Path) -> None:
    """``show --json`` is also ``SECRETWATCH_JSON``, never an unprefixed ``JSON`` (a CI
    job's variable), as every option of the command line."""
    (tmp_path / "token").write_text(CANARY)
    as_json = subprocess.run(
        [sys.executable, "-m", "secretwatch", "show", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SECRETWATCH_JSON": "true", "JSON": "false"},
    )
    assert json.loads(as_json.stdout)["keys"][0]["key"] == "token"
    as_text = subprocess.run(
        [sys.executable, "-m", "secretwatch", "show", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "JSON": "true"},
    )
    assert as_text.stdout.startswith("path:")
    assert CANARY not in as_json.stdout + as_text.stdout


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        # "@N" stands for a hidden --set value: from the environment it stands for nothing
        (["rotate", "n", "--main-tenant"], {"SECRETWATCH_SET": "@5"}, "give KEY=VALUE on the"),
        # a duration past what a thread's wait can take: a traceback on SIGTERM, or a dead
        # timer thread, before it was bounded
        (["watch", "v", "--exec", "true", "--exec-timeout", "1e300"], {}, "--exec-timeout: "),
        (["watch", "v", "--no-action", "--resync", "1e300"], {}, "--resync: "),
        (["run", "v", "--grace", "1e300", "--", "true"], {}, "--grace: "),
    ],
)
def test_values_the_sidecar_cant_use_are_usage_errors(
    args: list[str], env: dict[str, str], said: str
) -> None:
    """Values that reached the code as they were (an index out of range, a duration too
    long for a thread's wait) are usage errors: exit 2, one line, no traceback."""
    code, out, err = run_cli(*args, env=env)
    assert code == 2
    assert said in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in out + err
