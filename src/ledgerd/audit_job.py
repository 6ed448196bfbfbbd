"""The periodic audit: a leader-only job exporting what ``ledgerd audit`` finds as metrics,
so an alert fires on any broken invariant."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from ledgerd import metrics
from ledgerd.audit import audit
from ledgerd.errors import LedgerError
from ledgerd.store.base import Store

log = structlog.get_logger(__name__)


class AuditJob:
    """Runs the audit every ``interval_s`` while ``is_leader()``; results go to metrics."""

    def __init__(self, store: Store, is_leader: Callable[[], bool], interval_s: float) -> None:
        self._store = store
        self._is_leader = is_leader
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run_once(self) -> None:
        report = audit(self._store)
        metrics.AUDIT_PROBLEMS.set(report.problem_count)
        metrics.AUDIT_LAST_RUN.set(time.time())
        if not report.ok:
            log.error("audit found problems", count=report.problem_count, first=report.problems[:3])

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            if not self._is_leader():
                continue
            try:
                self.run_once()
            except LedgerError as exc:
                log.warning("periodic audit failed", error=str(exc), retriable=exc.retriable)
