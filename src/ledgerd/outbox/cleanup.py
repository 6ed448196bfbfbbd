"""Deletes finished outbox rows after the retention period (a leader-only job).

Idempotency outlives the rows: an APPLIED request is still recognised by its
journal entry. A REJECTED request retried after the retention is accepted
again as new, so keep the retention longer than any client retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from ledgerd import metrics
from ledgerd.errors import LedgerError
from ledgerd.store.base import LockToken, Store

log = structlog.get_logger(__name__)

ROWS_PER_DELETE = 10_000


class OutboxCleaner:
    """Every ``interval_s``, while this process leads, deletes rows older than the retention."""

    def __init__(
        self,
        store: Store,
        leader_token: Callable[[], LockToken | None],
        *,
        retention_s: float,
        interval_s: float = 60.0,
    ) -> None:
        self._store = store
        self._leader_token = leader_token
        self._retention_ms = int(retention_s * 1000)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox-cleaner", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run_once(self) -> int:
        """Delete what is due (in chunks) if this process leads; returns rows deleted."""
        deleted = 0
        while (token := self._leader_token()) is not None and not self._stop.is_set():
            cutoff = int(time.time() * 1000) - self._retention_ms
            count = self._store.delete_finished_requests(cutoff, ROWS_PER_DELETE, token)
            deleted += count
            metrics.OUTBOX_CLEANED.inc(count)
            if count < ROWS_PER_DELETE:
                break
        return deleted

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                deleted = self.run_once()
                if deleted:
                    log.info("outbox rows cleaned", deleted=deleted)
            except LedgerError as exc:
                log.warning("outbox clean-up failed", error=str(exc), retriable=exc.retriable)
