"""The relay: publishes outbox rows to the event log and marks them SENT.

Fresh rows arrive by hand-off from the local acceptor right after their
commit, so the common path needs no polling. A periodic sweep finds the rest
by status, never by an id watermark (auto-increment ids commit out of
order), on the leader only: PENDING rows older than ``sweep_min_age_s`` (an acceptor that died
before handing off, or one in another process) and FAILED rows whose backoff
has elapsed. Rows become SENT only from delivery reports. Publishing a row
twice is harmless: the consumer applies a request at most once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import structlog

from ledgerd import metrics
from ledgerd.domain.model import ChangeRequest, ChangeStatus
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.errors import LedgerError, LogUnavailable
from ledgerd.log.base import LogProducer
from ledgerd.log.codec import encode_change
from ledgerd.store.base import Store, UnsentRequest
from ledgerd.support import failpoints
from ledgerd.support.supervisor import Lifeline

log = structlog.get_logger(__name__)


def retry_delay_ms(attempts: int, base_ms: int, max_ms: int) -> int:
    """Exponential backoff: base, 2*base, 4*base … capped at max."""
    return min(max_ms, base_ms << min(max(attempts - 1, 0), 30))


class Relay:
    """Moves accepted requests from the outbox to the event log, on its own thread."""

    def __init__(
        self,
        store: Store,
        producer: LogProducer,
        *,
        topic: str,
        partition_count: int,
        batch_max_messages: int = 10_000,
        sweep_interval_s: float = 1.0,
        sweep_min_age_s: float = 5.0,
        retry_base_ms: int = 100,
        retry_max_ms: int = 30_000,
        queue_max: int = 1_000_000,
        may_sweep: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._producer = producer
        self._topic = topic
        self._partition_count = partition_count
        self._batch_max = batch_max_messages
        self._sweep_interval_s = sweep_interval_s
        self._sweep_min_age_s = sweep_min_age_s
        self._retry_base_ms = retry_base_ms
        self._retry_max_ms = retry_max_ms
        self._queue_max = queue_max
        self._may_sweep = may_sweep
        self._queue: deque[ChangeRequest] = deque()
        self._claimed: set[str] = set()  # queued or published, awaiting a delivery report
        self._delivered: list[str] = []
        self._failed: list[str] = []
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._next_sweep = 0.0

    # -- lifecycle ------------------------------------------------------------
    def has_work(self) -> bool:
        return bool(self._queue or self._claimed)

    def wake(self) -> None:
        """Interrupt the loop's idle wait (new work, or a stop request)."""
        self._work.set()

    def hand_off(self, requests: Sequence[ChangeRequest]) -> None:
        """Queue requests that were just committed (called by the acceptor)."""
        with self._lock:
            # Past the bound, rows wait in the outbox for the sweep instead of in memory.
            room = self._queue_max - len(self._queue)
            for request in requests[: max(room, 0)]:
                if request.request_id not in self._claimed:
                    self._claimed.add(request.request_id)
                    self._queue.append(request)
        self._work.set()

    def run_until_idle(self, timeout_s: float = 30.0) -> None:
        """Publish and sweep until nothing is left to send (tests, and shutdown)."""
        deadline = time.monotonic() + timeout_s
        self._next_sweep = 0.0
        while time.monotonic() < deadline:
            self._step(sweep_min_age_s=0.0)
            self._producer.flush(1.0)
            self._record_deliveries()
            with self._lock:
                if not self._queue and not self._claimed:
                    return

    # -- the loop -------------------------------------------------------------
    def run(self, lifeline: Lifeline) -> None:
        """The loop, for the supervisor: relay until asked to stop, then drain what is queued."""
        with self._lock:
            # After a crash, requests taken off the queue may never have been published:
            # forget those claims so the sweep finds the rows again (a resend is harmless).
            self._claimed = {request.request_id for request in self._queue}
        while not lifeline.stopping:
            lifeline.beat()
            failpoints.hit("relay.loop")
            try:
                busy = self._step(self._sweep_min_age_s)
            except LedgerError as exc:
                log.warning("relay step failed", error=str(exc), retriable=exc.retriable)
                busy = False
                lifeline.wait(self._retry_base_ms / 1000)
            if not busy:
                self._work.wait(0.05)
                self._work.clear()
        try:
            self._step(sweep_min_age_s=None)
            self._producer.flush(10.0)
            self._record_deliveries()
        except LedgerError as exc:
            log.warning("relay could not drain at shutdown", error=str(exc))

    def _step(self, sweep_min_age_s: float | None) -> bool:
        """One round: publish queued rows, sweep if due, record delivery reports."""
        now = time.monotonic()
        if sweep_min_age_s is not None and now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval_s
            # The sweep is a singleton job: with several relays, only the leader's runs.
            if self._may_sweep():
                self._sweep(sweep_min_age_s)
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))]
        for request in batch:
            self._publish(request)
        if batch:
            failpoints.hit("relay.after_produce", requests=len(batch))
        self._producer.poll(0.01 if batch else 0.0)
        recorded = self._record_deliveries()
        metrics.OUTBOX_IN_FLIGHT.set(len(self._claimed))
        return bool(batch) or recorded

    def _publish(self, request: ChangeRequest) -> None:
        request_id = request.request_id

        def on_delivery(error: Exception | None) -> None:
            with self._lock:
                (self._failed if error is not None else self._delivered).append(request_id)

        try:
            self._producer.publish(
                self._topic,
                user_key(request.user_id),
                encode_change(request),
                partition=partition_for_user(request.user_id, self._partition_count),
                on_delivery=on_delivery,
            )
        except LogUnavailable:
            on_delivery(LogUnavailable("not queued"))

    def _record_deliveries(self) -> bool:
        with self._lock:
            delivered, self._delivered = self._delivered, []
            failed, self._failed = self._failed, []
        if not delivered and not failed:
            return False
        now_ms = int(time.time() * 1000)
        try:
            if delivered:
                self._store.mark_sent(delivered, now_ms)
            if failed:
                self._store.mark_failed(failed, now_ms)
        except LedgerError:
            # Not recorded: put them back so the next round records them again.
            with self._lock:
                self._delivered = delivered + self._delivered
                self._failed = failed + self._failed
            raise
        metrics.OUTBOX_REQUESTS.labels(status="sent").inc(len(delivered))
        metrics.OUTBOX_REQUESTS.labels(status="failed").inc(len(failed))
        if failed:
            log.warning("relay publish failed; will retry", requests=len(failed))
        with self._lock:
            self._claimed.difference_update(delivered)
            self._claimed.difference_update(failed)
        return True

    def _sweep(self, min_age_s: float) -> None:
        for status, count in self._store.count_unfinished().items():
            metrics.OUTBOX_ROWS.labels(status=status.name.lower()).set(count)
        now_ms = int(time.time() * 1000)
        rows = self._store.find_unsent(now_ms - int(min_age_s * 1000), self._batch_max)
        oldest = max((now_ms - row.updated_at_ms for row in rows), default=0)
        metrics.OUTBOX_OLDEST_UNSENT_AGE.set(max(oldest, 0) / 1000)
        due = [row for row in rows if self._retry_due(row, now_ms)]
        with self._lock:
            fresh = [
                row.stored.request
                for row in due
                if row.stored.request.request_id not in self._claimed
            ]
            for request in fresh:
                self._claimed.add(request.request_id)
                self._queue.append(request)

    def _retry_due(self, row: UnsentRequest, now_ms: int) -> bool:
        if row.stored.status is not ChangeStatus.FAILED:
            return True
        delay = retry_delay_ms(row.attempts, self._retry_base_ms, self._retry_max_ms)
        return now_ms - row.updated_at_ms >= delay
