"""secretwatch's logger: its events go where the application's logs go.

Each event is an event name and fields (``log.info("secretwatch.changed", path=...)``).
Where it goes is decided at each event, so an application may configure its logging
before or after importing secretwatch:

- the application configured structlog (:func:`structlog.is_configured`): through its
  pipeline, as ``structlog.get_logger("secretwatch")`` would;
- otherwise: through the standard library's :mod:`logging`, as a record of the
  ``secretwatch`` logger at the event's level (``exception`` is ``ERROR`` with the
  exception being handled). The message is the event name; each field is an attribute of
  the record (``extra``) under its own name, except a name that a ``LogRecord`` uses
  (:data:`RESERVED`: ``name``, ``msg``, ``args``, ``message``, ``module``...), which is
  prefixed with ``secretwatch_`` (:func:`record_key`). The application's levels, handlers
  and format apply.

secretwatch configures no logging: the one thing it does is the standard library's advice
to libraries, a ``NullHandler`` on its ``secretwatch`` logger, so that an application that
configured no logging at all does not get secretwatch's warnings on stderr from
``logging``'s handler of last resort. The logger is made at its first event, not at
import, so that ``dictConfig`` after the import does not disable it. The command line
configures structlog for itself (:mod:`secretwatch._logging`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import structlog

__all__ = ["LOGGER_NAME", "PREFIX", "RESERVED", "Log", "log", "record_key"]

LOGGER_NAME = "secretwatch"

PREFIX = "secretwatch_"  # before a field's name that a LogRecord uses

RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",  # set by Formatter.format
    "asctime",  # set by Formatter.format
    "taskName",  # a LogRecord's since Python 3.12
}
"""The names ``logging`` refuses in ``extra``: the attributes of a ``LogRecord``."""

_structlog = structlog.get_logger(
    LOGGER_NAME
)  # a lazy proxy: reads the configuration at each event

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
}


@functools.cache
def _stdlib() -> logging.Logger:
    """The ``secretwatch`` logger, made at the first event that goes to ``logging``, not at
    import: ``logging.config.dictConfig`` (``disable_existing_loggers``, true by default)
    disables the loggers that exist when it runs, and an application may import
    secretwatch before it configures its logging."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(logging.NullHandler())
    return logger


def record_key(field: str) -> str:
    """The attribute of a ``logging`` record that holds the event's field ``field``."""
    return PREFIX + field if field in RESERVED else field


class Log:
    """A logger with structlog's calls (``info(event, **fields)``, ``bind(**fields)``) that
    sends each event to structlog or to ``logging``, whichever the application uses."""

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any] | None = None):
        self._context = context or {}

    def bind(self, **fields: Any) -> Log:
        """A logger that adds ``fields`` to every event."""
        return Log({**self._context, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at debug level."""
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at info level."""
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at warning level."""
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at error level."""
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log ``event`` at error level with the exception being handled."""
        self._emit("exception", event, fields)

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        if self._context:
            fields = {**self._context, **fields}
        if structlog.is_configured():
            getattr(_structlog, method)(event, **fields)
            return
        level = _LEVELS[method]
        stdlib = _stdlib()
        if stdlib.isEnabledFor(level):
            extra = {record_key(field): value for field, value in fields.items()}
            # stacklevel 3: the record says where secretwatch logged it, not this module
            stdlib.log(level, event, exc_info=method == "exception", extra=extra, stacklevel=3)


log = Log()
"""secretwatch's logger, for every module of the package."""
