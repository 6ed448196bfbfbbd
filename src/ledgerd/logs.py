"""Structured JSON logs on stderr: one JSON object per line, whoever logs.

ledgerd's own lines come from structlog. Everything else that writes logs in
the process goes through the same processors and the same writer:

* stdlib ``logging`` (grpc, asyncio, aiohttp, confluent_kafka's ``logger``
  adapter, the health servicer) through a handler whose formatter is
  ``structlog.stdlib.ProcessorFormatter``;
* Python warnings (``logging.captureWarnings``);
* exceptions nobody caught, in the main thread, other threads, or destructors
  (``sys.excepthook``, ``threading.excepthook``, ``sys.unraisablehook``), which
  Python would otherwise print as multi-line tracebacks.

A traceback is one field, ``exception``, so a line never spans several. Both
paths write through one ``structlog.WriteLogger`` lock on stderr, so lines
from different threads never interleave; and a line and its newline go out in
one ``write``, so lines from API workers sharing their parent's stderr (an
``O_APPEND`` file) do not interleave either (``print`` writes them apart, and
stderr writes through).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

import structlog
from structlog.typing import Processor

LEVELS = ("debug", "info", "warning", "error")


class _StderrHandler(logging.Handler):
    """Writes stdlib records, rendered by structlog, through structlog's stderr writer."""

    def __init__(self) -> None:
        super().__init__()
        # WriteLoggers of one file share its lock: no interleaving with structlog's lines.
        self._printer = structlog.WriteLogger(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._printer.msg(self.format(record))
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def configure_logging(level: str = "info", *, fields: Mapping[str, object] | None = None) -> None:
    """JSON lines at ``level`` and above; ``fields`` go into every line (say, which API
    worker wrote it, as workers share their parent's stderr)."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    constant = dict(fields or {})

    def add_fields(_: object, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        for key, value in constant.items():
            event.setdefault(key, value)
        return event

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_fields,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    render: list[Processor] = [
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=[*shared, *render],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )

    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    logging.captureWarnings(True)
    _log_uncaught_exceptions()


def _log_uncaught_exceptions() -> None:
    """Exceptions that reach Python's own printers become one JSON line each."""
    log = structlog.get_logger("ledgerd.uncaught")

    def excepthook(
        kind: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> None:
        log.critical("uncaught exception", exc_info=(kind, value, traceback))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return  # as Python's own hook: a thread may end itself this way
        thread = args.thread.name if args.thread is not None else None
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.error("uncaught exception in thread", thread=thread, exc_info=exc_info)

    def unraisablehook(unraisable: Any) -> None:  # sys.UnraisableHookArgs
        exc_info = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
        log.error(
            unraisable.err_msg or "exception ignored",
            object=repr(unraisable.object),
            exc_info=exc_info,
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    sys.unraisablehook = unraisablehook
