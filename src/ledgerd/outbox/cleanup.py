"""Deletes finished outbox rows after the retention period (a leader-only job).

Idempotency outlives the rows: an APPLIED request is still recognised by its
journal entry. A REJECTED request retried after the retention is accepted
again as new, so keep the retention longer than any client retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from ledgerd import metrics
from ledgerd.store.base import LockToken, Store
from ledgerd.support.periodic import PeriodicJob

log = structlog.get_logger(__name__)

ROWS_PER_DELETE = 10_000


class OutboxCleaner(PeriodicJob):
    """Every ``interval_s``, while this process leads, deletes rows older than the retention."""

    def __init__(
        self,
        store: Store,
        leader_token: Callable[[], LockToken | None],
        *,
        retention_s: float,
        interval_s: float = 60.0,
    ) -> None:
        super().__init__("outbox-cleaner", interval_s, self._clean)
        self._store = store
        self._leader_token = leader_token
        self._retention_ms = int(retention_s * 1000)

    def run_once(self) -> int:
        """Delete what is due (in chunks) if this process leads; returns rows deleted."""
        deleted = 0
        while (token := self._leader_token()) is not None and not self.stopping:
            cutoff = int(time.time() * 1000) - self._retention_ms
            count = self._store.delete_finished_requests(cutoff, ROWS_PER_DELETE, token)
            deleted += count
            metrics.OUTBOX_CLEANED.inc(count)
            if count < ROWS_PER_DELETE:
                break
        return deleted

    def _clean(self) -> None:
        deleted = self.run_once()
        if deleted:
            log.info("outbox rows cleaned", deleted=deleted)
