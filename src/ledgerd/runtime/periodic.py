"""A background job run every interval, as a supervised loop."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ledgerd.errors import LedgerError
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.support import failpoints

log = structlog.get_logger(__name__)


class PeriodicJob:
    """Calls ``step`` every ``interval_s`` from ``run``; a LedgerError is logged and the next
    round tries again (anything else is a bug: the supervisor logs it and restarts the loop)."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], None]) -> None:
        self.name = name
        self._interval_s = interval_s
        self._step = step
        self._lifeline: Lifeline | None = None
        self._in_step = False

    @property
    def stopping(self) -> bool:
        return self._lifeline is not None and self._lifeline.stopping

    def has_work(self) -> bool:
        """True while a round runs: only then does silence mean a stall."""
        return self._in_step

    def run(self, lifeline: Lifeline) -> None:
        self._lifeline = lifeline
        while not lifeline.wait(self._interval_s):
            lifeline.beat()
            failpoints.hit("periodic.loop", job=self.name)
            self._in_step = True
            try:
                self._step()
            except LedgerError as exc:
                log.warning(f"{self.name} failed", error=str(exc), retriable=exc.retriable)
            finally:
                self._in_step = False
            lifeline.beat()
