"""A canary secret never shows in logs, errors, tracebacks or reprs, whatever goes wrong."""

from __future__ import annotations

import io
import json
import logging
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

import pytest
import structlog
from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError, PydanticKnownError
from structlog.testing import LogCapture

import secretwatch
from secretwatch._errors import describe, safe_errors
from secretwatch._logging import configure_logging
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


def test_pydantic_messages_that_quote_the_input_are_withheld() -> None:
    """Only pydantic's own messages for types that never quote the input are kept."""

    class A(BaseModel):
        kind: Literal["a"]

    class B(BaseModel):
        kind: Literal["b"]

    class Model(BaseModel):
        port: int = Field(gt=0)
        url: AnyHttpUrl
        id: UUID
        choice: Annotated[A | B, Field(discriminator="kind")]
        borrowed: str
        since: str
        pin: SecretStr = Field(min_length=40)

        @field_validator("borrowed")
        @classmethod
        def custom(cls, value: str) -> str:
            raise PydanticCustomError("string_type", "bad value {v}", {"v": value})

        @field_validator("since")
        @classmethod
        def known(cls, value: str) -> str:
            try:
                datetime.strptime(value, "%Y")
            except ValueError as exc:  # a known type, with the parser's message as context
                raise PydanticKnownError("datetime_parsing", {"error": str(exc)}) from None
            return value

    with pytest.raises(PydanticValidationError) as info:
        Model(
            port=0,
            url="relative/" + CANARY,  # type: ignore[arg-type]
            id=CANARY,  # type: ignore[arg-type]
            choice={"kind": CANARY},  # type: ignore[arg-type]
            borrowed=CANARY,
            since=CANARY,
            pin=CANARY,  # type: ignore[arg-type]
        )
    details = {detail["loc"][0]: detail for detail in safe_errors(info.value) or []}
    assert details["port"]["msg"] == "Input should be greater than 0"
    assert details["url"]["msg"] == "Input should be a valid URL, relative URL without a base"
    for field in ("id", "choice", "borrowed", "since", "pin"):  # pin: its length is input
        assert "withheld" in details[field]["msg"], field
    assert CANARY not in repr(details) + describe(info.value)


def test_failing_callbacks_log_no_locals(tmp_path: Path) -> None:
    """structlog's dict tracebacks show locals: a failing callback's are never logged."""
    output = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(output),
    )
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"password": "first"})
    with secretwatch.watch(vol.path, debounce=0) as secrets:

        def reconnect(change: secretwatch.Change) -> None:
            dsn = f"postgresql://app:{change.new['password']}@db/app"
            raise ConnectionError(f"could not connect to {dsn}")

        secrets.subscribe(reconnect)
        recorder = Recorder(secrets)  # called after reconnect
        vol.write({"password": CANARY})
        recorder.change()
    assert "secretwatch.callback_failed" in output.getvalue()
    assert "reconnect" in output.getvalue()
    assert CANARY not in output.getvalue()


def test_a_validator_that_exits_rejects_the_version(tmp_path: Path) -> None:
    """sys.exit() in validate is a rejection like any exception, reported by type."""

    def validate(snapshot: secretwatch.Snapshot) -> None:
        if snapshot["token"] != "good":
            sys.exit(f"bad token {snapshot['token']}")

    vol = AtomicVolume(tmp_path / "v")
    vol.write({"token": "good"})
    with secretwatch.watch(vol.path, validate=validate, debounce=0) as secrets:
        recorder = Recorder(secrets)
        vol.write({"token": CANARY})
        error = recorder.error()
    assert isinstance(error, secretwatch.ValidationError)
    assert "SystemExit" in error.message
    assert CANARY not in rendered(error)


def test_kept_errors_hold_no_context(tmp_path: Path) -> None:
    """last_error keeps no traceback and no exception it was raised during (a
    JSONDecodeError holds the whole document in its ``doc``)."""
    vol = AtomicVolume(tmp_path / "v")
    vol.write({"config.json": "{}"})
    with secretwatch.watch(vol.path, decoders={"*.json": "json"}, debounce=0) as secrets:
        recorder = Recorder(secrets)
        vol.write({"config.json": '{"k": "' + CANARY})
        error = recorder.error()
    assert secrets.last_error is error
    assert (error.__traceback__, error.__context__, error.__cause__) == (None, None, None)
    report = traceback.TracebackException.from_exception(error, capture_locals=True)
    assert CANARY not in "".join(report.format())


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_logged_tracebacks_show_no_locals(
    fmt: Literal["json", "console"], capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's log configuration: a traceback, should one be logged, has its frames and
    exception type but never the frames' locals (structlog's dict tracebacks show them by
    default)."""
    configure_logging(fmt)

    def connect(password: str) -> None:
        raise ConnectionError("refused")

    try:
        connect(CANARY)
    except ConnectionError:
        structlog.get_logger("secretwatch").exception("secretwatch.example_failure")
    logged = capsys.readouterr().err
    assert "ConnectionError" in logged
    assert "connect" in logged  # the frame is there
    assert CANARY not in logged
    if fmt == "json":
        (frame,) = [
            f for f in json.loads(logged)["exception"][0]["frames"] if f["name"] == "connect"
        ]
        assert "locals" not in frame or not frame["locals"]
