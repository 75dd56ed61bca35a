"""secretwatch's events go where the application's logs go: through structlog when the
application configured it, else through the standard library's ``logging`` under the
``secretwatch`` logger; never to stdout or stderr by themselves, and never with a value."""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from structlog.testing import LogCapture

import secretwatch
from secretwatch._log import LOGGER_NAME, PREFIX, RESERVED, log, record_key
from secretwatch.testing import AtomicVolume

from .conftest import TIMEOUT

CANARY = "CANARY-4b8e-logs-do-not-leak"

# An application: it logs (or not) as MODE says, then watches a volume through a load, a
# change whose callback fails (an error event) and a rejected version (a warning event),
# with the canary in the values, the failing callback's message and the rejected version.
APP = """
import json, logging, queue, sys
from pathlib import Path

MODE, ROOT, CANARY, TIMEOUT = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    def format(self, record):
        fields = {k: v for k, v in vars(record).items() if k not in STANDARD}
        head = {"logger": record.name, "level": record.levelname, "module": record.module}
        return json.dumps({**head, "message": record.getMessage(), **fields}, default=repr)


if MODE not in ("none", "dictconfig"):
    handler = logging.FileHandler(ROOT / "logging.log")
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])

import structlog

import secretwatch
from secretwatch.testing import AtomicVolume


def configure_structlog():
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(open(ROOT / "structlog.log", "w")),
    )


if MODE == "structlog":  # after importing secretwatch, before watching
    configure_structlog()
if MODE == "dictconfig":  # after importing secretwatch, as a framework's settings do
    import logging.config

    handler = {"class": "logging.FileHandler", "filename": str(ROOT / "logging.log")}
    logging.config.dictConfig(  # disable_existing_loggers: True, the default
        {
            "version": 1,
            "formatters": {"json": {"()": JsonLines}},
            "handlers": {"file": {**handler, "formatter": "json"}},
            "root": {"level": "DEBUG", "handlers": ["file"]},
        }
    )

volume = AtomicVolume(ROOT / "secret")
volume.write({"password": CANARY, "port": "1"})
changes, errors = queue.SimpleQueue(), queue.SimpleQueue()


def reconnect(change):
    raise ConnectionError(f"could not log in with {change.new['password']}")


with secretwatch.watch(volume.path, decoders={"port": int}, debounce=0) as secrets:
    secrets.subscribe(reconnect)
    secrets.subscribe(changes.put)  # called after reconnect: its failure is logged by then
    secrets.subscribe_errors(errors.put)
    volume.write({"password": CANARY + "-2", "port": "2"})
    changes.get(timeout=TIMEOUT)
    if MODE == "later":  # while watching: from the next event on
        configure_structlog()
    volume.write({"password": CANARY, "port": CANARY})
    errors.get(timeout=TIMEOUT)
"""

EVENTS = [
    ("secretwatch.loaded", "info"),
    ("secretwatch.changed", "info"),
    ("secretwatch.callback_failed", "error"),
    ("secretwatch.rejected", "warning"),
]


def run_app(mode: str, root: Path) -> tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the application in ``mode``; its stdout, stderr, and the lines that its
    ``logging`` and its structlog wrote (JSON, in order)."""
    done = subprocess.run(
        [sys.executable, "-c", APP, mode, str(root), CANARY, str(TIMEOUT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    files = [root / "logging.log", root / "structlog.log"]
    texts = [file.read_text() if file.exists() else "" for file in files]
    assert all(CANARY not in text for text in [done.stdout, done.stderr, *texts])
    by_logging, by_structlog = ([json.loads(line) for line in text.splitlines()] for text in texts)
    return done.stdout, done.stderr, by_logging, by_structlog


def test_without_structlog_events_are_logging_records(tmp_path: Path) -> None:
    """An application that configured only ``logging`` gets every event as a record of the
    ``secretwatch`` logger at its level, the event as the message and the fields as the
    record's attributes (a value in none), and nothing from secretwatch on stdout or stderr."""
    out, err, by_logging, by_structlog = run_app("logging", tmp_path)
    assert (out, err, by_structlog) == ("", "", [])
    assert [(r["message"], r["level"].lower()) for r in by_logging] == EVENTS
    assert {r["logger"] for r in by_logging} == {"secretwatch"}
    loaded, changed, failed, rejected = by_logging
    path = str(tmp_path / "secret")
    assert (loaded["path"], loaded["keys"], loaded["layout"]) == (
        path,
        ["password", "port"],
        "kubelet",
    )
    assert (changed["path"], changed["modified"], changed["module"]) == (
        path,
        ["password", "port"],
        "watcher",  # where secretwatch logged it, for the application's %(module)s
    )
    assert (failed["callback"], failed["error_type"]) == ("reconnect", "ConnectionError")
    assert (rejected["path"], rejected["key"], rejected["error_type"]) == (
        path,
        "port",
        "DecodeError",
    )


def test_logging_configured_by_dict_after_the_import_gets_the_events(tmp_path: Path) -> None:
    """``logging.config.dictConfig`` after ``import secretwatch`` (as a framework's settings
    do, disabling the loggers that exist then) still gets every event: importing
    secretwatch creates no logger."""
    out, err, by_logging, by_structlog = run_app("dictconfig", tmp_path)
    assert (out, err, by_structlog) == ("", "", [])
    assert [(r["message"], r["level"].lower()) for r in by_logging] == EVENTS


def test_without_any_configuration_nothing_is_written(tmp_path: Path) -> None:
    """An application that configured no logging at all hears nothing from secretwatch:
    no line on stdout, and not even its warnings and errors on stderr (``logging``'s last
    resort handler)."""
    out, err, by_logging, by_structlog = run_app("none", tmp_path)
    assert (out, err, by_logging, by_structlog) == ("", "", [], [])


def test_with_structlog_configured_events_go_through_it(tmp_path: Path) -> None:
    """An application that configured structlog (after importing secretwatch) gets every
    event through its pipeline, and none through ``logging`` as well."""
    out, err, by_logging, by_structlog = run_app("structlog", tmp_path)
    assert (out, err, by_logging) == ("", "", [])
    assert [(e["event"], e["level"]) for e in by_structlog] == EVENTS
    assert by_structlog[1]["path"] == str(tmp_path / "secret")


def test_structlog_configured_while_watching_takes_over(tmp_path: Path) -> None:
    """The choice is made per event: once the application configures structlog, the next
    events go through it; those before went through ``logging``."""
    out, err, by_logging, by_structlog = run_app("later", tmp_path)
    assert (out, err) == ("", "")
    assert [(r["message"], r["level"].lower()) for r in by_logging] == EVENTS[:3]
    assert [(e["event"], e["level"]) for e in by_structlog] == EVENTS[3:]


class Records(logging.Handler):
    """The records that reach it, in a list."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """The records of the ``secretwatch`` logger, at every level, structlog unconfigured."""
    structlog.reset_defaults()
    logger = logging.getLogger(LOGGER_NAME)
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_field_named_like_a_record_attribute_is_prefixed(records: Records) -> None:
    """A field whose name a LogRecord uses (``name``, ``msg``, ``args``, ``message``...)
    is the record's attribute ``secretwatch_<field>``; every other field keeps its name;
    the record's own attributes are untouched."""
    fields = {name: f"field {name}" for name in RESERVED} | {"path": "/p", "key": "k"}
    log.info("secretwatch.example", **fields)
    (record,) = records.records
    assert (record.name, record.msg, record.args, record.getMessage()) == (
        LOGGER_NAME,
        "secretwatch.example",
        (),
        "secretwatch.example",
    )
    assert (record.path, record.key) == ("/p", "k")  # type: ignore[attr-defined]
    for name in RESERVED:
        assert getattr(record, PREFIX + name) == f"field {name}"
    assert record_key("path") == "path"
    assert record_key("module") == "secretwatch_module"
    assert {"name", "msg", "args", "message", "asctime", "module", "taskName"} <= RESERVED


def test_levels_map_and_bound_fields_are_kept(records: Records) -> None:
    """debug, info, warning, error and exception are logging's levels (exception with the
    exception being handled); fields bound with ``bind`` are in each record."""
    bound = log.bind(path="/p")
    bound.debug("secretwatch.a")
    bound.info("secretwatch.b", key="k")
    bound.warning("secretwatch.c")
    bound.error("secretwatch.d")
    try:
        raise ConnectionError("refused")
    except ConnectionError:
        bound.exception("secretwatch.e")
    assert [(r.levelno, r.msg) for r in records.records] == [
        (logging.DEBUG, "secretwatch.a"),
        (logging.INFO, "secretwatch.b"),
        (logging.WARNING, "secretwatch.c"),
        (logging.ERROR, "secretwatch.d"),
        (logging.ERROR, "secretwatch.e"),
    ]
    assert all(r.path == "/p" for r in records.records)  # type: ignore[attr-defined]
    assert records.records[1].key == "k"  # type: ignore[attr-defined]
    assert [r.exc_info[0] if r.exc_info else None for r in records.records] == [
        *[None] * 4,
        ConnectionError,
    ]
    assert records.records[0].module == "test_logs"  # the caller, not secretwatch._log


class Db(BaseSettings):
    password: SecretStr
    port: int


def test_volume_and_settings_versions_are_different_fields(
    tmp_path: Path, logs: LogCapture
) -> None:
    """A LiveSettings' events count its versions (``settings_version``), its volume's events
    count the volume's (``volume_version``); after a rejected model the two differ, and no
    event has a bare ``version`` that could be read as either."""
    volume = AtomicVolume(tmp_path / "db")
    volume.write({"password": "first", "port": "5432"})
    applied: queue.SimpleQueue[Db] = queue.SimpleQueue()
    errors: queue.SimpleQueue[secretwatch.SecretWatchError] = queue.SimpleQueue()
    options: secretwatch.WatchOptions = {"debounce": 0}
    with secretwatch.watch_settings(Db, secrets_dir=volume.path, watch_options=options) as live:
        live.subscribe(lambda old, new: applied.put(new))  # called after the event is logged
        live.subscribe_errors(errors.put)
        volume.write({"password": CANARY, "port": CANARY})  # a volume version, a bad model
        errors.get(timeout=TIMEOUT)
        volume.write({"password": "third", "port": "5433"})
        assert applied.get(timeout=TIMEOUT).port == 5433
    counted = [
        (entry["event"], entry.get("volume_version"), entry.get("settings_version"))
        for entry in logs.entries
        if "volume_version" in entry or "settings_version" in entry
    ]
    assert counted == [
        ("secretwatch.loaded", 1, None),
        ("secretwatch.settings_loaded", None, 1),
        ("secretwatch.changed", 2, None),
        ("secretwatch.rejected", None, 1),  # the settings' version kept in force
        ("secretwatch.changed", 3, None),
        ("secretwatch.settings_changed", None, 2),
    ]
    assert [entry for entry in logs.entries if "version" in entry] == []
    assert CANARY not in repr(logs.entries)
