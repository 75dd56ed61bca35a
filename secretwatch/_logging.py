"""Log configuration for the command line: structlog, JSON or console, to stderr.

stdout stays the command's own output (``show``, ``demo``). Tracebacks, should anything log
one, never show the frames' locals, which may hold values.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from structlog.tracebacks import ExceptionDictTransformer

__all__ = ["configure_logging"]

LogFormat = Literal["json", "console"]


def configure_logging(fmt: LogFormat | None = None, level: str = "info") -> None:
    """Configure structlog: ``fmt`` (default: JSON unless stdout is a terminal) at ``level``."""
    if fmt is None:
        fmt = "console" if sys.stdout.isatty() else "json"
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        tracebacks: structlog.typing.Processor = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        tracebacks = structlog.processors.format_exc_info
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
