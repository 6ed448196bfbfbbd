"""Structured JSON logs on stderr (structlog)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog


def configure_logging(level: str = "info", *, fields: Mapping[str, object] | None = None) -> None:
    """JSON lines at ``level`` and above; ``fields`` go into every line (say, which API
    worker wrote it, as workers share their parent's stderr)."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s")
    constant = dict(fields or {})

    def add_fields(_: object, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        for key, value in constant.items():
            event.setdefault(key, value)
        return event

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
