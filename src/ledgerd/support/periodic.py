"""A background job run every interval on its own thread, with start/stop."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from ledgerd.errors import LedgerError

log = structlog.get_logger(__name__)


class PeriodicJob:
    """Calls ``step`` every ``interval_s`` until stopped; a LedgerError is logged and the
    next round tries again (anything else is a bug and ends the thread loudly)."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], None]) -> None:
        self.name = name
        self._interval_s = interval_s
        self._step = step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the current round; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._step()
            except LedgerError as exc:
                log.warning(f"{self.name} failed", error=str(exc), retriable=exc.retriable)
