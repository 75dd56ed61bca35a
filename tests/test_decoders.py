"""Decoders: which decoder a key gets, and errors that name the key, never the value."""

from __future__ import annotations

import pytest

from secretwatch import DecodeError, RedactedBytes, RedactedStr
from secretwatch._read.decoders import Decoders


def test_exact_key_wins_over_patterns() -> None:
    """An exact entry beats a matching pattern; patterns go in order; text is the default."""
    decoders = Decoders({"*.json": "bytes", "a.json": "json", "*": "base64"})
    assert decoders.decode("a.json", b'{"x": 1}', path="/v") == {"x": 1}
    assert decoders.decode("b.json", b"{}", path="/v") == b"{}"
    assert decoders.decode("c", b"aGk=", path="/v") == b"hi"
    assert Decoders().decode("k", b"v", path="/v") == "v"


def test_patterns_match_nested_keys() -> None:
    """fnmatch rules: * matches / too."""
    assert Decoders({"*.pem": "bytes"}).decode("certs/ca.pem", b"x", path="/v") == b"x"


def test_values_are_redacted_types() -> None:
    """text gives RedactedStr, bytes and base64 give RedactedBytes, JSON strings too."""
    decoders = Decoders({"b": "bytes", "j": "json", "e": "base64"})
    assert type(decoders.decode("t", b"v", path="/v")) is RedactedStr
    assert type(decoders.decode("b", b"v", path="/v")) is RedactedBytes
    assert type(decoders.decode("e", b"dg==\n", path="/v")) is RedactedBytes
    document = decoders.decode("j", b'{"k": ["s", {"n": "t"}], "i": 2}', path="/v")
    assert type(document["k"][0]) is RedactedStr
    assert type(document["k"][1]["n"]) is RedactedStr
    assert document["i"] == 2


@pytest.mark.parametrize(
    ("decoder", "data", "reason"),
    [
        ("text", b"\xffsecret", "not valid UTF-8"),
        ("json", b'{"secret": ', "not valid JSON (line 1, column 12)"),
        ("json", b"\xff", "not valid UTF-8"),
        ("base64", b"secret!", "not valid base64"),
        (int, b"secret", "could not be decoded by int: ValueError"),
    ],
)
def test_errors_name_key_and_path_never_the_value(
    decoder: object, data: bytes, reason: str
) -> None:
    """The message says which key, where and why; the cause is not chained."""
    with pytest.raises(DecodeError) as info:
        Decoders({"k": decoder}).decode("k", data, path="/etc/secret")  # type: ignore[dict-item]
    error = info.value
    assert reason in str(error)
    assert "'k'" in str(error)
    assert "/etc/secret" in str(error)
    assert "secret" not in str(error).replace("/etc/secret", "")
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    assert (error.path, error.key) == ("/etc/secret", "k")


def test_unknown_decoder() -> None:
    """A misspelt decoder name is a ValueError listing the choices."""
    with pytest.raises(ValueError, match="'text', 'bytes', 'json', 'base64'"):
        Decoders({"k": "yaml"})  # type: ignore[dict-item]


def test_exact_key_with_glob_characters() -> None:
    """A key literally named like a pattern gets its own decoder."""
    decoders = Decoders({"weird[1].json": "json"})
    assert decoders.decode("weird[1].json", b"[1]", path="/v") == (1,)
    assert decoders.decode("weird1.json", b"[1]", path="/v") == (1,)  # still a pattern too


def test_json_values_are_read_only() -> None:
    """Decoded JSON is shared by every reader: objects refuse changes, arrays are tuples."""
    import copy
    import json
    import pickle

    document = Decoders({"j": "json"}).decode("j", b'{"a": {"b": [1, "x"]}}', path="/v")
    assert isinstance(document, dict)
    with pytest.raises(TypeError, match="read-only"):
        document["a"] = 1
    with pytest.raises(TypeError):
        document["a"].update(b=2)
    assert document["a"]["b"] == (1, "x")
    assert json.loads(json.dumps(document)) == {"a": {"b": [1, "x"]}}
    assert copy.deepcopy(document) == document
    assert pickle.loads(pickle.dumps(document)) == document
    mutable = dict(document)
    mutable["a"] = 2
    assert mutable == {"a": 2}


def test_a_decoder_that_is_false_is_still_used() -> None:
    """A callable decoder whose truth value is false (an empty container) is not skipped."""

    class Custom(list[int]):
        def __call__(self, data: bytes) -> str:
            return "custom"

    assert Decoders({"k": Custom()}).decode_all({"k": b"v"}, path="/v") == {"k": "custom"}
