"""The relay: publishes outbox rows to the event log, and sweeps the outbox.

**Publishing.** Every process that accepts requests publishes its own rows
right after their group commit (the acceptor hands them over), in batches,
signed (``ledgerd.log.signing``) and stamped with their acceptance time. The
group commits of a short span (``Acceptor``'s ``group_span_s``) are one *publish
group*: once the acceptor closed it and every message of it has a delivery
report, its one ``publish_groups`` row is deleted. That is the only write for a
published row (no SENT update per row); its outcome (journal entry or
rejection) is what finishes it. A failed delivery marks the row FAILED.

**Sweeping** (the leader only, every ``sweep_interval_s``), never by an id
watermark (auto-increment ids commit out of order): rows with an outcome older
than ``sweep_min_age_s`` are deleted (their journal entry or rejection answers
for them from then on); rows without one are published again, flagged
``resent``, if they may not be in the log: their group is still there after
``sweep_min_age_s`` (the acceptor's process died before publishing), or their
delivery FAILED (with exponential backoff per row). Rows already in the log wait
for the consumer, however long it lags. A resent copy is harmless: the consumer
reads the outcome of every resent or old message before applying it
(``ledgerd.consumer.provenance``), and the sweep age leaves the consumer's trust
window room for clock skew. Publish groups left behind are forgotten after
twice the sweep age, once their rows have been published again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from ledgerd import metrics
from ledgerd.domain.model import ChangeRequest, ChangeStatus, ChangeType
from ledgerd.domain.partitioning import partition_for_user, user_key
from ledgerd.errors import LedgerError, LogUnavailable
from ledgerd.log.base import LogProducer
from ledgerd.log.codec import encode_group
from ledgerd.log.signing import MessageSigner
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.store.base import LockToken, Store, UnsentRequest
from ledgerd.support import failpoints

log = structlog.get_logger(__name__)

# Finished rows deleted per statement, and statements per sweep (the rest waits a round).
ROWS_PER_DELETE = 10_000
DELETES_PER_SWEEP = 20
# Publish groups are forgotten no sooner than this, whatever the sweep age (a group
# commit still in its transaction must not lose its group).
STALE_GROUP_MIN_AGE_MS = 120_000
# The relay producer's linger: a ``wait=true`` caller waits for it, and the consumer's
# fetches follow the requests it makes (one per linger and partition at most). Longer
# lingers cost the broker less per record (ledgerd.log.kafka) but add to every change's
# time until applied. 50 ms with the consumer's batch delay at 50 (was 20 and 100): under
# change-single the relay's produce requests 87 -> 50 a second and the consumer's fetches
# 68 -> 46, consumer commits 12.6 -> 18.6 a second. wait=true (8 clients) p50 measured
# 141-145 -> 124 ms on a quiet machine and 168 -> 165 ms on a loaded one: no worse, since
# the consumer's top-up was most of that wait (issue 22).
PUBLISH_LINGER_MS = 50
# How often the sweep counts the rows in flight for the metrics (a scan of the outbox).
COUNT_INTERVAL_S = 15.0


def retry_delay_ms(attempts: int, base_ms: int, max_ms: int) -> int:
    """Exponential backoff: base, 2*base, 4*base … capped at max."""
    return min(max_ms, base_ms << min(max(attempts - 1, 0), 30))


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One message: a change, or the legs of an atomic group (one message, all or none)."""

    legs: tuple[ChangeRequest, ...]
    accepted_at_ms: int
    resent: bool
    group_id: str | None = None

    @property
    def request_ids(self) -> list[str]:
        return [leg.request_id for leg in self.legs]

    @property
    def is_follow_up(self) -> bool:
        """A transfer's credit or return, which the consumer wrote: once in the log, its
        outbox row has done its work (its outcome may live in another shard)."""
        return self.legs[0].type in _FOLLOW_UP_TYPES


_FOLLOW_UP_TYPES = frozenset((ChangeType.TRANSFER_IN, ChangeType.TRANSFER_RETURN))


class _Delivery:
    """The delivery callback of one message: a slotted object, not a closure per record."""

    __slots__ = ("_outgoing", "_relay")

    def __init__(self, relay: Relay, outgoing: _Outgoing) -> None:
        self._relay = relay
        self._outgoing = outgoing

    def __call__(self, error: Exception | None) -> None:
        self._relay._report(self._outgoing, error)


def messages_of(requests: Sequence[ChangeRequest]) -> list[tuple[ChangeRequest, ...]]:
    """Requests in outbox order, as messages: consecutive legs of one atomic group together."""
    messages: list[tuple[ChangeRequest, ...]] = []
    for request in requests:
        group = request.atomic_group
        if group and messages and messages[-1][0].atomic_group == group:
            messages[-1] = (*messages[-1], request)
        else:
            messages.append((request,))
    return messages


class Relay:
    """Moves accepted requests from the outbox to the event log, on its own thread."""

    def __init__(
        self,
        store: Store,
        producer: LogProducer,
        signer: MessageSigner,
        *,
        topic: str,
        partition_count: int,
        batch_max_messages: int = 10_000,
        sweep_interval_s: float = 1.0,
        sweep_min_age_s: float = 30.0,
        retry_base_ms: int = 100,
        retry_max_ms: int = 30_000,
        queue_max: int = 1_000_000,
        unfinished_warn_s: float = 300.0,
        may_sweep: Callable[[], bool] = lambda: True,
        outbox_lock: Callable[[], LockToken | None] = lambda: None,
    ) -> None:
        self._store = store
        self._producer = producer
        self._signer = signer
        self._topic = topic
        self._partition_count = partition_count
        self._batch_max = batch_max_messages
        self._sweep_interval_s = sweep_interval_s
        self._sweep_min_age_s = sweep_min_age_s
        self._retry_base_ms = retry_base_ms
        self._retry_max_ms = retry_max_ms
        self._queue_max = queue_max
        self._unfinished_warn_ms = int(unfinished_warn_s * 1000)
        self._may_sweep = may_sweep
        self._outbox_lock = outbox_lock
        self._queue: deque[_Outgoing] = deque()
        self._claimed: set[str] = set()  # queued or published, awaiting a delivery report
        self._resent: list[str] = []
        self._delivered: list[str] = []
        self._failed: list[str] = []
        self._group_unreported: dict[str, int] = {}  # messages of a group without a report
        self._groups_open: set[str] = set()  # the acceptor may still add to these
        # Open groups with rows not queued (the queue was full): kept for the sweep.
        self._groups_abandoned: set[str] = set()
        self._groups_done: list[str] = []
        self._follow_ups_delivered: list[str] = []
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._next_sweep = 0.0
        self._next_count = 0.0

    # -- lifecycle ------------------------------------------------------------
    def has_work(self) -> bool:
        return bool(self._queue or self._claimed)

    def wake(self) -> None:
        """Interrupt the loop's idle wait (new work, or a stop request)."""
        self._work.set()

    def hand_off(
        self,
        requests: Sequence[ChangeRequest],
        accepted_at_ms: int,
        group_id: str | None = None,
        *,
        group_open: bool = False,
    ) -> None:
        """Queue requests whose outbox rows were just committed (called by the acceptor, and
        by the consumer for a transfer's next legs).

        Their publish group is deleted once each of its messages has a delivery report;
        with ``group_open``, only after ``close_group`` too (later commits add to it).
        """
        messages = messages_of(requests)
        with self._lock:
            # Past the bound, rows wait in the outbox for the sweep instead of in memory
            # (their group stays, so the sweep knows they may not be in the log).
            room = self._queue_max - len(self._queue)
            if group_id is not None and group_id not in self._groups_abandoned:
                if len(messages) <= room:
                    unreported = self._group_unreported.get(group_id, 0)
                    self._group_unreported[group_id] = unreported + len(messages)
                    if group_open:
                        self._groups_open.add(group_id)
                else:
                    self._group_unreported.pop(group_id, None)
                    self._groups_open.discard(group_id)
                    if group_open:  # later hand-offs of it are not tracked either
                        self._groups_abandoned.add(group_id)
                    group_id = None
            else:
                group_id = None
            for legs in messages[: max(room, 0)]:
                outgoing = _Outgoing(legs, accepted_at_ms, False, group_id)
                self._claimed.update(outgoing.request_ids)
                self._queue.append(outgoing)
        self._work.set()

    def accepted(
        self, requests: Sequence[ChangeRequest], accepted_at_ms: int, group_id: str
    ) -> None:
        """The acceptor's hand-off: its publish group stays open until ``close_group``."""
        self.hand_off(requests, accepted_at_ms, group_id, group_open=True)

    def close_group(self, group_id: str) -> None:
        """No more requests join the group: delete it once its messages are reported."""
        with self._lock:
            self._groups_abandoned.discard(group_id)
            if group_id not in self._groups_open:
                return
            self._groups_open.remove(group_id)
            if self._group_unreported.get(group_id) == 0:
                del self._group_unreported[group_id]
                self._groups_done.append(group_id)
        self._work.set()

    def abandon_group(self, group_id: str) -> None:
        """The group may hold rows never handed off (a commit into it failed after all):
        never delete it, so the sweep publishes them; its messages queued still go out."""
        with self._lock:
            self._groups_open.discard(group_id)
            self._group_unreported.pop(group_id, None)

    def run_until_idle(self, timeout_s: float = 30.0, *, sweep_min_age_s: float = 0.0) -> None:
        """Publish and sweep until nothing is left to send (tests, and shutdown)."""
        deadline = time.monotonic() + timeout_s
        self._next_sweep = 0.0
        swept = False
        while time.monotonic() < deadline:
            self._step(sweep_min_age_s=None if swept else sweep_min_age_s)
            swept = True
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
            self._claimed = {rid for outgoing in self._queue for rid in outgoing.request_ids}
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
            else:
                # The leader reports it: a former leader's last figure must not linger.
                metrics.OLDEST_UNFINISHED_AGE.set(0)
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))]
        for outgoing in batch:
            self._publish(outgoing)
        if batch:
            failpoints.hit("relay.after_produce", requests=len(batch))
        self._producer.poll(0.01 if batch else 0.0)
        recorded = self._record_deliveries()
        metrics.OUTBOX_IN_FLIGHT.set(len(self._claimed))
        return bool(batch) or recorded

    def _publish(self, outgoing: _Outgoing) -> None:
        request = outgoing.legs[0]
        value = encode_group(
            outgoing.legs, accepted_at_ms=outgoing.accepted_at_ms, resent=outgoing.resent
        )
        on_delivery = _Delivery(self, outgoing)
        try:
            self._producer.publish(
                self._topic,
                user_key(request.user_id),
                value,
                partition=partition_for_user(request.user_id, self._partition_count),
                headers=self._signer.headers(value),
                on_delivery=on_delivery,
            )
        except LogUnavailable:
            on_delivery(LogUnavailable("not queued"))

    def _report(self, outgoing: _Outgoing, error: Exception | None) -> None:
        """One message's delivery report (on the thread that polls the producer)."""
        request_ids, group_id = outgoing.request_ids, outgoing.group_id
        with self._lock:
            # The lists are swapped out when recorded: look them up at report time.
            if error is not None:
                self._failed.extend(request_ids)
            elif outgoing.resent:
                self._resent.extend(request_ids)
            else:
                self._delivered.extend(request_ids)
            if error is None and outgoing.is_follow_up:
                self._follow_ups_delivered.extend(request_ids)
            if group_id is not None:
                left = self._group_unreported.get(group_id)
                if left is None:  # abandoned meanwhile: the sweep publishes it again
                    return
                self._group_unreported[group_id] = left - 1
                if left == 1 and group_id not in self._groups_open:
                    del self._group_unreported[group_id]
                    self._groups_done.append(group_id)

    def _record_deliveries(self) -> bool:
        with self._lock:
            delivered, self._delivered = self._delivered, []
            resent, self._resent = self._resent, []
            failed, self._failed = self._failed, []
            groups, self._groups_done = self._groups_done, []
            follow_ups, self._follow_ups_delivered = self._follow_ups_delivered, []
        if not delivered and not resent and not failed and not groups:
            return False
        now_ms = int(time.time() * 1000)
        try:
            # A first publication writes nothing per row: its group goes once complete,
            # after its failures are recorded, and the row's outcome finishes it.
            if resent:
                self._store.mark_sent(resent, now_ms)
            if failed:
                self._store.mark_failed(failed, now_ms)
            self._store.delete_groups(groups)
            self._store.delete_requests(follow_ups)
        except LedgerError:
            # Not recorded: put them back so the next round records them again.
            with self._lock:
                self._resent = resent + self._resent
                self._failed = failed + self._failed
                self._groups_done = groups + self._groups_done
                self._follow_ups_delivered = follow_ups + self._follow_ups_delivered
                self._claimed.difference_update(delivered)
            raise
        metrics.OUTBOX_REQUESTS.labels(status="sent").inc(len(delivered) + len(resent))
        metrics.OUTBOX_REQUESTS.labels(status="failed").inc(len(failed))
        if failed:
            log.warning("relay publish failed; will retry", requests=len(failed))
        with self._lock:
            self._claimed.difference_update(delivered)
            self._claimed.difference_update(resent)
            self._claimed.difference_update(failed)
        return True

    def _sweep(self, min_age_s: float) -> None:
        now_ms = int(time.time() * 1000)
        cutoff_ms = now_ms - int(min_age_s * 1000)
        self._delete_finished(cutoff_ms)
        if time.monotonic() >= self._next_count:
            self._next_count = time.monotonic() + COUNT_INTERVAL_S
            for status, count in self._store.count_unfinished().items():
                metrics.OUTBOX_ROWS.labels(status=status.name.lower()).set(count)
            self._report_unfinished(now_ms)
        rows = self._store.find_unsent(cutoff_ms, self._batch_max)
        oldest = max((now_ms - row.created_at_ms for row in rows), default=0)
        metrics.OUTBOX_OLDEST_UNSENT_AGE.set(max(oldest, 0) / 1000)
        due = [row for row in rows if self._retry_due(row, now_ms)]
        with self._lock:
            fresh = [row for row in due if row.stored.request.request_id not in self._claimed]
            created = {row.stored.request.request_id: row.created_at_ms for row in fresh}
            for legs in messages_of([row.stored.request for row in fresh]):
                outgoing = _Outgoing(legs, created[legs[0].request_id], resent=True)
                self._claimed.update(outgoing.request_ids)
                self._queue.append(outgoing)
        token = self._outbox_lock()
        if token is not None and len(rows) < self._batch_max:
            # Every unpublished row older than the cutoff is in hand: groups older than
            # twice the sweep age have nothing left to say, but those of the rows found.
            keep = {row.group_id for row in rows if row.group_id is not None}
            horizon_ms = max(2 * (now_ms - cutoff_ms), STALE_GROUP_MIN_AGE_MS)
            self._store.delete_stale_groups(now_ms - horizon_ms, keep, token)

    def _report_unfinished(self, now_ms: int) -> None:
        """Whatever its status, a request without an outcome for long was lost somewhere
        (a gap in the log, a stopped partition, a broken relay): say so."""
        oldest_ms = self._store.oldest_unfinished_ms()
        age_ms = 0 if oldest_ms is None else max(now_ms - oldest_ms, 0)
        metrics.OLDEST_UNFINISHED_AGE.set(age_ms / 1000)
        if age_ms > self._unfinished_warn_ms:
            log.warning(
                "an accepted request has had no outcome for too long",
                age_s=age_ms / 1000,
                warn_after_s=self._unfinished_warn_ms / 1000,
            )

    def _delete_finished(self, cutoff_ms: int) -> None:
        """Rows with an outcome are done: delete them, a bounded amount per sweep."""
        for _ in range(DELETES_PER_SWEEP):
            token = self._outbox_lock()
            if token is None:
                return
            deleted = self._store.delete_finished_requests(cutoff_ms, ROWS_PER_DELETE, token)
            metrics.OUTBOX_CLEANED.inc(deleted)
            if deleted < ROWS_PER_DELETE:
                return

    def _retry_due(self, row: UnsentRequest, now_ms: int) -> bool:
        if row.stored.status is ChangeStatus.PENDING:
            return True
        delay = retry_delay_ms(row.attempts, self._retry_base_ms, self._retry_max_ms)
        return now_ms - row.updated_at_ms >= delay
