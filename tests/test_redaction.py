"""A canary secret never shows in logs, errors, tracebacks or reprs, whatever goes wrong."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest
from pydantic import BaseModel
from structlog.testing import LogCapture

import secretwatch
from secretwatch.testing import AtomicVolume

from .conftest import Recorder, events

CANARY = "CANARY-7f3a9c-do-not-leak"


class Port(BaseModel):
    port: int


def check_port(snapshot: secretwatch.Snapshot) -> None:
    """A validator whose pydantic error would quote the canary as its input."""
    Port(port=snapshot["port"])


def rendered(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


def test_canary_never_leaks(
    tmp_path: Path, logs: LogCapture, caplog: pytest.LogCaptureFixture
) -> None:
    """Load, change, and every kind of rejection, with the canary in the values."""
    caplog.set_level(logging.DEBUG)
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"password": CANARY, "port": "5432", "config.json": "{}"})
    decoders: dict[str, secretwatch.DecoderSpec] = {"config.json": "json", "n": int}
    errors: list[BaseException] = []
    texts: list[str] = []
    with secretwatch.watch(vol.path, decoders=decoders, validate=check_port, debounce=0) as secrets:
        recorder = Recorder(secrets)
        secrets.subscribe(lambda change: texts.append(repr(change)))

        bad_versions = [
            {"password": CANARY, "port": CANARY, "config.json": "{}"},  # validation
            {"password": CANARY, "port": "1", "config.json": '{"k": "' + CANARY},  # bad JSON
            {"password": CANARY, "port": "1", "config.json": "{}", "n": CANARY},  # int(canary)
            {"password": CANARY.encode() + b"\xff", "port": "1", "config.json": "{}"},  # UTF-8
        ]
        for payload in bad_versions:
            vol.write(payload)
            errors.append(recorder.error())
        good_json = '{"k": "' + CANARY + '"}'
        vol.write({"password": CANARY + "-2", "port": "1", "config.json": good_json})
        change = recorder.change()
        texts += [repr(secrets), repr(secrets.snapshot), repr(change), repr(change.new)]
        texts += [repr(value) for value in secrets.snapshot.values()]
        texts.append(repr(secrets["config.json"]))
        texts.append(repr(secrets.subscribe(print)))

    assert [type(e).__name__ for e in errors] == [
        "ValidationError",
        "DecodeError",
        "DecodeError",
        "DecodeError",
    ]
    assert len(events(logs, "secretwatch.rejected")) == 4
    texts += [rendered(error) for error in errors]
    texts += [repr(entry) for entry in logs.entries]
    texts.append(caplog.text)
    assert all(CANARY not in text for text in texts)
    assert "port" in str(errors[0])  # the error still says what is wrong
    assert "'n'" in str(errors[2])


def test_too_large_value_is_not_quoted(tmp_path: Path) -> None:
    """A file over max_bytes is reported by size."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"blob": CANARY * 10})
    with pytest.raises(secretwatch.TooLargeError) as info:
        secretwatch.watch(vol.path, max_bytes=10)
    assert CANARY not in rendered(info.value)
