"""``secretwatch show``: keys, sizes, keyed fingerprints, version and writer; never a value."""

from __future__ import annotations

import codecs
import hashlib
import hmac
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretwatch._cli.show import BAD_NAMES_EXIT
from secretwatch._read.names import escaped
from secretwatch.testing import AtomicVolume

from .conftest import bind_mount

CANARY = "CANARY-show-41c7"


def show(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SECRETWATCH_FINGERPRINT_KEY"}
    if key is not None:
        env["SECRETWATCH_FINGERPRINT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "secretwatch", "show", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.smoke
def test_json_for_a_kubelet_volume(tmp_path: Path) -> None:
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": CANARY, "nested/key": "x"})
    done = show(str(vol.path), "--json", key="team-key")
    assert done.returncode == 0, done.stderr
    description = json.loads(done.stdout)
    revision = os.readlink(vol.path / "..data")
    assert description == {
        "path": str(vol.path),
        "layout": "kubelet",
        "writer": "kubelet (atomic writer, ..data symlink)",
        "version": revision,
        "subpath_mount": False,
        "fingerprint_key": "SECRETWATCH_FINGERPRINT_KEY",
        "bad_names": [],
        "keys": [
            {"key": "nested/key", "size": 1, "fingerprint": fingerprint(b"team-key", b"x")},
            {
                "key": "password",
                "size": len(CANARY),
                "fingerprint": fingerprint(b"team-key", CANARY.encode()),
            },
        ],
    }
    assert CANARY not in done.stdout + done.stderr


def fingerprint(key: bytes, value: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, value, hashlib.sha256).hexdigest()[:32]


def test_fingerprints_are_keyed(tmp_path: Path) -> None:
    """With the same key, fingerprints compare; without one, each run has its own key, so a
    fingerprint is no unsalted hash that a weak password could be guessed from."""
    vol = AtomicVolume(tmp_path / "secret")
    vol.write({"password": "hunter2"})

    def prints(key: str | None) -> str:
        done = show(str(vol.path), "--json", key=key)
        return str(json.loads(done.stdout)["keys"][0]["fingerprint"])

    assert prints("k") == prints("k") == fingerprint(b"k", b"hunter2")
    assert prints("k") != prints("other")
    assert prints(None) != prints(None)
    unsalted = hashlib.sha256(b"hunter2").hexdigest()
    assert unsalted[:32] not in prints(None)


def test_text_output(tmp_path: Path) -> None:
    directory = tmp_path / "plain"
    directory.mkdir()
    (directory / "api-key").write_text(CANARY)
    done = show(str(directory))
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == f"path:     {directory}"
    assert lines[1] == "writer:   plain directory"
    assert any(line.startswith("api-key ") and f" {len(CANARY)} " in line for line in lines)
    assert "random key" in done.stdout
    assert CANARY not in done.stdout + done.stderr


def test_a_missing_volume_is_a_clear_error(tmp_path: Path) -> None:
    done = show(str(tmp_path / "missing"))
    assert done.returncode == 1
    assert done.stderr.strip() == f"secretwatch show: {tmp_path / 'missing'} does not exist"


def test_subpath_mount_is_flagged(tmp_path: Path) -> None:
    """A single file mounted over another (what subPath does) never sees a rotation."""
    source = tmp_path / "source"
    source.write_text(CANARY)
    target = tmp_path / "mounted" / "token"
    target.parent.mkdir()
    target.write_text("placeholder")
    with bind_mount(source, target):
        done = show(str(target), "--json")
        assert json.loads(done.stdout)["subpath_mount"] is True
        text = show(str(target)).stdout
        assert "warning:  a subPath mount" in text
    assert CANARY not in done.stdout + text


def test_names_are_escaped_as_text(tmp_path: Path) -> None:
    """A ..data target named with an escape sequence and a newline is printed escaped: it
    can't colour the terminal nor forge a line of the output (JSON keeps the real name)."""
    volume = tmp_path / "secret"
    revision = "..2026\x1b[31m\nversion:  forged"
    (volume / revision).mkdir(parents=True)
    (volume / revision / "token").write_text(CANARY)
    (volume / "..data").symlink_to(revision)
    done = show(str(volume))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("version:")] == [
        "version:  ..2026\\x1b[31m\\nversion:  forged"
    ]
    assert CANARY not in done.stdout
    as_json = show(str(volume), "--json")
    assert json.loads(as_json.stdout)["version"] == revision


# odd names below a volume (bytes, as a file system holds them) -> as show prints them
ODD_NAMES = {
    b"bad-\xff-name": "bad-\\xff-name",  # not UTF-8
    b"line\nbreak": "line\\nbreak",  # a newline
    b"bell\x07": "bell\\x07",  # a control character
    b"nel\xc2\x85": "nel\\xc2\\x85",  # U+0085, a control character in UTF-8
    b"nel\x85": "nel\\x85",  # the byte 0x85 alone, which is not UTF-8
    b"back\\slash\x1b[31m": "back\\\\slash\\x1b[31m",  # a backslash and an escape
}


def odd_volume(tmp_path: Path) -> Path:
    """A plain directory with two keys (one of them nested, one not ASCII but printable),
    the names above, and a directory whose name is not UTF-8; every file holds the canary."""
    directory = tmp_path / "plain"
    (directory / "nested").mkdir(parents=True)
    (directory / "api-key").write_text(CANARY)
    (directory / "nested" / "café").write_text(CANARY)
    raw = os.fsencode(directory)
    for name in ODD_NAMES:
        Path(os.fsdecode(raw + b"/" + name)).write_text(CANARY)
    odd_directory = raw + b"/dir-\xfe"
    os.mkdir(odd_directory)
    Path(os.fsdecode(odd_directory + b"/inner")).write_text(CANARY)
    return directory


def test_odd_names_are_named_and_the_keys_shown(tmp_path: Path) -> None:
    """A name that is not printable UTF-8 does not make a plain directory unreadable: show
    lists the keys, names each odd entry escaped (a directory with a trailing /) in a
    section of its own, warns on stderr and exits with BAD_NAMES_EXIT; no value is shown and
    no name draws on the terminal or makes a line of its own."""
    directory = odd_volume(tmp_path)
    done = show(str(directory))
    assert done.returncode == BAD_NAMES_EXIT == 3, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("api-key ") and f" {len(CANARY)} " in line for line in lines)
    assert any(line.startswith("nested/café ") for line in lines)
    assert "2 keys; fingerprints" in done.stdout
    listed = lines[lines.index(next(line for line in lines if line.startswith("NOT KEYS"))) + 1 :]
    assert listed == sorted([*ODD_NAMES.values(), "dir-\\xfe/"])
    assert not {"\x07", "\x1b", "\x85"} & set(done.stdout + done.stderr)
    assert done.stderr.strip() == (
        f"secretwatch show: 7 names in {directory} are not printable UTF-8, so not keys; "
        "a watcher rejects this volume while they are there"
    )
    assert CANARY not in done.stdout + done.stderr


def test_odd_names_in_json(tmp_path: Path) -> None:
    """``--json`` lists the keys and, in ``bad_names``, each odd name escaped as in the text
    (a name that is not UTF-8 has no JSON string); the exit status tells a script."""
    directory = odd_volume(tmp_path)
    done = show(str(directory), "--json", key="k")
    assert done.returncode == BAD_NAMES_EXIT, done.stderr
    description = json.loads(done.stdout)
    assert [entry["key"] for entry in description["keys"]] == ["api-key", "nested/café"]
    assert description["keys"][0]["fingerprint"] == fingerprint(b"k", CANARY.encode())
    assert description["bad_names"] == sorted([*ODD_NAMES.values(), "dir-\\xfe/"])
    assert "not printable UTF-8" in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_an_escaped_name_in_bash_names_the_file_again(tmp_path: Path) -> None:
    """What show prints for an odd name is what bash's $'...' reads back as the name, so
    the file can be renamed or removed by pasting it."""
    directory = odd_volume(tmp_path)
    names = json.loads(show(str(directory), "--json").stdout)["bad_names"]
    for name in names:
        test = "-d" if name.endswith("/") else "-f"
        script = f"cd {shlex.quote(str(directory))} && test {test} $'{name}'"
        assert subprocess.run(["bash", "-c", script], check=False).returncode == 0, name


@given(st.binary(max_size=64))
def test_escaping_is_printable_and_reversible(raw: bytes) -> None:
    """Any name, decoded as Python decodes file names, escapes to printable text that reads
    back as exactly its bytes (Python's bytes escapes, like bash's $'...'): two names never
    show alike."""
    shown = escaped(os.fsdecode(raw))
    assert shown.isprintable()
    assert codecs.escape_decode(shown.encode())[0] == raw


def test_a_single_file_whose_name_is_odd_is_named_not_shown_as_a_key(tmp_path: Path) -> None:
    """A single watched file is a key under its own name, which must be printable UTF-8 as
    any key's: show names it apart, escaped, and exits with BAD_NAMES_EXIT."""
    raw = os.fsencode(tmp_path) + b"/single\nfile\xff"
    Path(os.fsdecode(raw)).write_text(CANARY)
    done = show(os.fsdecode(raw), "--json")
    assert done.returncode == BAD_NAMES_EXIT, done.stderr
    description = json.loads(done.stdout)
    assert (description["keys"], description["bad_names"]) == ([], ["single\\nfile\\xff"])
    assert CANARY not in done.stdout + done.stderr
