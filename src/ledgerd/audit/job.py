"""The periodic audit: a leader-only job exporting what ``ledgerd audit`` finds as metrics,
so an alert fires on any broken invariant."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from ledgerd import metrics
from ledgerd.audit.check import DEFAULT_MAX_IN_FLIGHT_S, audit
from ledgerd.runtime.periodic import PeriodicJob
from ledgerd.store.base import Store

log = structlog.get_logger(__name__)


class AuditJob(PeriodicJob):
    """Runs the audit every ``interval_s`` while ``is_leader()``; results go to metrics."""

    def __init__(
        self,
        store: Store,
        is_leader: Callable[[], bool],
        interval_s: float,
        max_in_flight_s: float = DEFAULT_MAX_IN_FLIGHT_S,
    ) -> None:
        super().__init__("audit", interval_s, self.run_once)
        self._store = store
        self._is_leader = is_leader
        self._max_in_flight_s = max_in_flight_s

    def run_once(self) -> None:
        if not self._is_leader():
            return
        report = audit(self._store, max_in_flight_s=self._max_in_flight_s)
        metrics.AUDIT_PROBLEMS.set(report.problem_count)
        if report.transfers is not None:
            metrics.AUDIT_TRANSFERS_IN_FLIGHT.set(report.transfers.in_flight)
        metrics.AUDIT_LAST_RUN.set(time.time())
        if not report.ok:
            log.error("audit found problems", count=report.problem_count, first=report.problems[:3])
