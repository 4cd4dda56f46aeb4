"""structlog configuration: key-value logs, one event per line on stderr."""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL}


def _not_pyroute2_chatter(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not record.name.startswith("pyroute2")


def configure_logging(level: str = "info") -> None:
    numeric = LEVELS[level]
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s")
    # asyncio's own debug chatter would drown ours.
    logging.getLogger("asyncio").setLevel(max(numeric, logging.WARNING))
    # So would pyroute2's (every netlink message), whose logger level cannot be set here:
    # pyroute2 resets it when it loads, at the first netlink request.
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_pyroute2_chatter)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "event"], drop_missing=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
