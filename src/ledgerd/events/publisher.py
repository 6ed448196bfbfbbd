"""The event publisher: publishes each journal entry of the partitions this process's
consumer owns once to ``balance-events``, to the same partition number.

Its cursor lives in the topic, not in the database: on gaining a partition it reads the
partition's newest event and resumes after its ``sequence`` (the entry's ``event_seq``).
The consumer hands it the entries of every commit (``hand_off``, in commit order, with the
log offsets each commit moved its partitions over); a partition's entries are published
straight from those hand-offs while they continue where the publisher stands: the
hand-off starts at or below ``covered`` (every entry of the log offsets below it is
queued already), and entries up to the cursor are skipped. Anything else reads the
journal after the cursor until it is exhausted (catching up): a partition just gained,
a commit whose hand-off was dropped (the queue is bounded) or never came (an error
between a commit and its hand-off: the next commit's starts above ``covered``), a batch
that met requests already decided (an ambiguous commit retried: only the journal has
what the first attempt journaled), and, as a safety net, every partition when no
hand-off came for ``poll_interval_s``. With ``source_topic`` known, that safety net first
reads the partitions' committed offsets (one small read, not a journal read per
partition): a partition whose committed offset is at or below ``covered`` has every
committed entry queued already, and one above it is a gap. The run loop reads the journal
for a gap only if the next check still finds it (a commit whose hand-off was on its way
when the offsets were read closes it meanwhile, and is then not read back); a lost
hand-off is so published at most two poll intervals late, never skipped.

Sequences have gaps (the log offset times LEGS_PER_MESSAGE plus the leg; rejected changes
have no entry), so continuity is told by offsets, never by ``event_seq + 1``.

What the topic holds is always a prefix of the journal: records of a partition go out in
journal order through a gapless producer (idempotent, no delivery timeout: see
``EventLog.producer``), so a partition's records land in the order queued and a record
lands only after all those queued before it; what could leave a gap fails every queued
record instead, and the publisher then forgets its cursors. The queue is flushed empty
before any tail is read from the topic (the cursor is then exactly what the topic holds,
with nothing in flight behind it), and only then. Between those, records keep flowing
without a flush per round: a cursor counts what is queued, and a crash, a failed record
or a lost partition leaves the topic holding a prefix of what was queued, which the next
tail read resumes after; so a crash neither republishes nor skips. A journal read needs
no flush: it reads after the cursor, which already counts what is in flight. Rounds that
read the journal do end with one, to bound what a long catch-up holds in flight.
A process that still publishes after its partition moved (a paused or partitioned owner,
until it notices) can duplicate events; readers de-duplicate by (user_id, currency,
version). Entries journaled before schema 5 have no position (event_seq 0) and are not
published.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ledgerd import metrics
from ledgerd.domain.model import LEGS_PER_MESSAGE, JournalEntry
from ledgerd.errors import LedgerError, LogUnavailable
from ledgerd.events.codec import decode_event, encode_event, encode_event_row
from ledgerd.events.handoff import CommittedJournal, HandOffQueue
from ledgerd.log.base import EventLog, LogProducer
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.store.base import JournalRow, Store

log = structlog.get_logger(__name__)

# (partition, event_seq) of a journal row, of a journal entry: C-level getters.
_ROW_POSITION: Callable[[JournalRow], tuple[int, int]] = operator.itemgetter(12, 13)
_ENTRY_POSITION: Callable[[JournalEntry], tuple[int, int]] = operator.attrgetter(
    "partition", "event_seq"
)


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    topic: str = "balance-events"
    # Journal entries read (and published) per partition per round, when catching up.
    batch_max_events: int = 5000
    # Without a hand-off for this long, each partition's journal is checked anyway.
    poll_interval_s: float = 0.2
    # The topic the consumer applies (its offsets in the store say what is committed):
    # the safety net reads those offsets and the journal only on a gap. None: it reads
    # every partition's journal.
    source_topic: str | None = None
    # How long one flush may take before the round fails (and the next one retries).
    flush_timeout_s: float = 30.0
    retry_base_s: float = 0.5
    # Entries (plus one per commit) waiting in the hand-off queue at most: a commit that
    # does not fit is read from the journal instead.
    handoff_max_events: int = 50_000
    # Records queued and not yet reported delivered before a round waits for them.
    in_flight_max_events: int = 100_000
    # How often delivery reports are served while records are in flight and nothing
    # else wakes the loop.
    report_interval_s: float = 0.05
    # The producer's linger: nothing flushes rounds of hand-offs, so records wait up to
    # this long to go out together. Measured on the production stack with commits of 2
    # and 20 entries: the broker's CPU per event 3-5x lower at 50 ms than at 5 ms or with
    # a flush per round (at 5000 entries per commit the same at any linger).
    linger_ms: int | None = 50


class EventPublisher:
    """Publishes committed journal entries of owned partitions; ``run`` is its supervised loop."""

    def __init__(
        self,
        store: Store,
        event_log: EventLog,
        owned_partitions: Callable[[], Collection[int]],
        config: PublisherConfig,
    ) -> None:
        self._store = store
        self._log = event_log
        self._owned = owned_partitions
        self._config = config
        self._producer: LogProducer = event_log.producer(gapless=True, linger_ms=config.linger_ms)
        self._handoffs = HandOffQueue(config.handoff_max_events)
        # The event_seq of the newest event queued, by owned partition: the topic holds
        # the events up to it, or a prefix of them while some are in flight.
        self._cursors: dict[int, int] = {}
        # Partitions publishing from hand-offs -> the log offset below which every
        # journal entry is queued.
        self._covered: dict[int, int] = {}
        # Partitions catching up from the journal -> a log offset below which everything
        # is committed: once a read after the cursor comes back short, it is covered.
        self._behind: dict[int, int] = {}
        # Partitions whose committed offset (the value) was above ``covered`` at the last
        # safety-net check: read from the journal if the next check finds them short still.
        self._suspects: dict[int, int] = {}
        self._woken = threading.Event()
        self._delivery_errors: list[Exception] = []
        self._queued = 0  # records queued since the start
        self._reported = 0  # of them, delivered or failed
        self._delivered = 0  # of them, delivered
        self._counted = 0  # of the delivered, added to EVENTS_PUBLISHED
        # When the last hand-off was taken, or the journal checked.
        self._last_news = time.monotonic()
        self._closed = False

    @property
    def cursors(self) -> dict[int, int]:
        """The last published event_seq, by owned partition (a copy)."""
        return dict(self._cursors)

    def wake(self) -> None:
        """Ask for a round now; cheap, from any thread."""
        self._woken.set()

    def hand_off(self, committed: CommittedJournal) -> None:
        """What a consumer commit just journaled, in commit order; never blocks (a full
        queue drops it, and its entries are read from the journal later)."""
        self._handoffs.put(committed)
        self._woken.set()

    # -- lifecycle ------------------------------------------------------------
    def run(self, lifeline: Lifeline) -> None:
        """Publish until ``lifeline.stopping``; retriable errors wait and retry from the tails,
        anything else reaches the supervisor (which calls ``run`` again)."""
        # Called again after a crash: whatever the topic holds is the truth.
        self._forget()
        failures = 0
        while not lifeline.stopping:
            lifeline.beat()
            self._woken.clear()
            # No hand-off for a while: check the journal anyway (a commit that never
            # handed off, with nothing committed after it to reveal the gap).
            check_journal = time.monotonic() - self._last_news >= self._config.poll_interval_s
            try:
                _, more = self.run_once(check_journal=check_journal, patient=True)
            except LedgerError as exc:
                if not exc.retriable:
                    raise
                failures += 1
                log.warning("event publishing failed; retrying", error=str(exc))
                self._forget()
                lifeline.wait(min(self._config.retry_base_s * 2 ** (failures - 1), 10.0))
                continue
            failures = 0
            if not more:
                in_flight = self._queued > self._reported
                self._woken.wait(
                    self._config.report_interval_s if in_flight else self._config.poll_interval_s
                )

    def close(self) -> None:
        """Deliver what is queued and release the producer; idempotent. After ``run`` returned."""
        if not self._closed:
            self._closed = True
            self._producer.close()

    def run_until_idle(self, max_rounds: int = 1_000_000) -> int:
        """Publish until the journal and the hand-offs have nothing new, then wait for every
        record's delivery (burst mode); returns events published."""
        total = 0
        for round_number in range(max_rounds):
            published, more = self.run_once(check_journal=round_number == 0)
            total += published
            if not more:
                break
        self._flush_all()
        self._count_delivered()
        return total

    # -- one round ------------------------------------------------------------
    def run_once(self, *, check_journal: bool = True, patient: bool = False) -> tuple[int, bool]:
        """Publish what the owned partitions committed since their cursors: the hand-offs,
        and the journal of partitions catching up (of every one with ``check_journal``;
        with ``source_topic`` set, of those whose committed offset is past what is queued,
        and with ``patient``, only once a second check finds the same).
        Returns the events queued and whether more is waiting (a partition had more than
        one batch to read, or hand-offs came meanwhile).

        Raises:
            LogUnavailable: a publish failed; the cursors are forgotten.
            PoisonMessage: a partition's newest record is not an event.
            StoreUnavailable: the journal could not be read.
        """
        try:
            return self._round(check_journal, patient)
        except LogUnavailable:
            self._forget()  # some records may be in the topic: the tails will say which
            raise

    def _round(self, check_journal: bool, patient: bool) -> tuple[int, bool]:
        owned = set(self._owned())
        for partition in set(self._cursors) - owned:
            self._lose(partition)  # whoever gains it reads its tail
        gained = sorted(owned - set(self._cursors))
        if gained:
            self._flush_all()  # nothing in flight: the tails are what the topic will hold
            for partition in gained:
                self._cursors[partition] = self._tail_sequence(partition)
                self._behind[partition] = 0
        handoffs, dropped = self._handoffs.take()
        if handoffs or dropped or check_journal:
            self._last_news = time.monotonic()
        now_ms = time.time() * 1000
        lags: dict[int, float] = {}
        queued = 0
        for committed in handoffs:
            queued += self._continue(committed, lags, now_ms)
        for partition, next_offset in dropped.items():
            self._fall_behind(partition, next_offset)
        if check_journal:
            self._check_committed(patient)
        read, full = self._catch_up(lags, now_ms)
        if read or self._queued - self._reported > self._config.in_flight_max_events:
            self._flush_all()
        else:
            self._producer.poll(0)
            if self._delivery_errors:
                self._flush_all()  # raises; and lets a producer that failed be replaced
        for partition in owned:
            metrics.EVENTS_LAG.labels(partition=str(partition)).set(
                max(lags.get(partition, 0.0), 0.0)
            )
        self._count_delivered()
        return queued + read, full or bool(self._handoffs)

    def _continue(self, committed: CommittedJournal, lags: dict[int, float], now_ms: float) -> int:
        """Publish a hand-off's entries of the partitions it continues; the others fall
        behind (their journal is read). Returns the events queued."""
        cursors, covered = self._cursors, self._covered
        live: dict[int, int] = {}
        for partition, first_offset, next_offset in committed.spans:
            if partition not in cursors:
                continue  # not ours
            at = covered.get(partition)
            if at is not None and first_offset <= at and committed.complete:
                live[partition] = cursors[partition]
                if next_offset > at:
                    covered[partition] = next_offset
            else:
                self._fall_behind(partition, next_offset)
        if not live or not committed.entries:
            return 0
        rows = committed.rows
        applied_at_ms = rows[0][8] if rows is not None else committed.entries[0].applied_at_ms
        lag_s = (now_ms - applied_at_ms) / 1000  # a commit's entries share it
        for partition in live:
            lags.setdefault(partition, lag_s)
        # The rows where the commit has them: no entry is made to publish them.
        if rows is not None and committed.amount_texts is not None:
            queued = self._queue_rows(rows, committed.amount_texts, live)
        elif rows is not None:
            queued = self._queue(rows, encode_event_row, _ROW_POSITION, live)
        else:
            queued = self._queue(committed.entries, encode_event, _ENTRY_POSITION, live)
        cursors.update(live)
        self._queued += queued
        return queued

    def _queue(
        self,
        items: Sequence[Any],
        encode: Callable[[Any], tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]],
        position: Callable[[Any], tuple[int, int]],
        live: dict[int, int],
    ) -> int:
        """Publish the items (entries, or rows: ``encode`` and ``position`` read their kind)
        of the ``live`` partitions past each one's cursor there; returns the records queued."""
        publish, topic, delivered = self._producer.publish, self._config.topic, self._on_delivery
        queued = 0
        for item in items:
            partition, event_seq = position(item)
            last = live.get(partition)
            # Not live: another partition's, or one falling behind. Up to the cursor: queued
            # already (read from the journal before its hand-off was taken).
            if last is None or event_seq <= last:
                continue
            key, value, headers = encode(item)
            publish(topic, key, value, partition=partition, headers=headers, on_delivery=delivered)
            live[partition] = event_seq
            queued += 1
        return queued

    def _queue_rows(
        self, rows: Sequence[JournalRow], amount_texts: Sequence[str], live: dict[int, int]
    ) -> int:
        """``_queue`` of rows with their amounts as text (not formatted again here)."""
        publish, topic, delivered = self._producer.publish, self._config.topic, self._on_delivery
        queued = 0
        for row, amount_text in zip(rows, amount_texts, strict=True):
            partition, event_seq = row[12], row[13]
            last = live.get(partition)
            if last is None or event_seq <= last:  # as in ``_queue``
                continue
            key, value, headers = encode_event_row(row, amount_text)
            publish(topic, key, value, partition=partition, headers=headers, on_delivery=delivered)
            live[partition] = event_seq
            queued += 1
        return queued

    def _check_committed(self, patient: bool) -> None:
        """The safety net: make the partitions whose committed entries may not all be
        queued fall behind (see the module's docstring)."""
        topic = self._config.source_topic
        if topic is None:
            self._behind.update(self._covered)
            self._covered.clear()
            return
        committed = self._store.get_positions(topic)
        suspects, self._suspects = self._suspects, {}
        for partition, at in list(self._covered.items()):
            below = committed.get(partition, 0)
            if below <= at:
                continue  # every committed entry is queued
            if patient and partition not in suspects:
                self._suspects[partition] = below  # a hand-off may be on its way
            else:
                self._fall_behind(partition, below)

    def _fall_behind(self, partition: int, committed_below: int) -> None:
        """Read ``partition``'s journal until exhausted: everything below the log offset
        ``committed_below`` is committed and must be published."""
        if partition not in self._cursors:
            return  # not ours
        at = self._covered.pop(partition, None)
        if at is not None and at >= committed_below:
            self._covered[partition] = at  # queued already
            return
        self._behind[partition] = max(self._behind.get(partition, 0), committed_below)

    def _catch_up(self, lags: dict[int, float], now_ms: float) -> tuple[int, bool]:
        """Read each partition that is behind from the journal, one batch; returns the
        events queued and whether a partition had a full batch (more to read)."""
        read, full = 0, False
        batch_max = self._config.batch_max_events
        for partition in sorted(self._behind):
            entries = self._store.scan_events(partition, self._cursors[partition], batch_max)
            metrics.EVENTS_JOURNAL_READS.inc()
            if entries:
                lags.setdefault(partition, (now_ms - entries[0].applied_at_ms) / 1000)
                self._publish(partition, entries)
                read += len(entries)
            if len(entries) >= batch_max:
                full = True
                continue
            # Exhausted: every commit taken so far ends at or below the anchor, and the
            # newest entry's message is whole (a commit journals all its legs together).
            anchor = self._behind.pop(partition)
            newest = self._cursors[partition]
            whole = (newest - 1) // LEGS_PER_MESSAGE + 1 if newest > 0 else 0
            self._covered[partition] = max(anchor, whole)
        return read, full

    def _publish(self, partition: int, entries: Sequence[JournalEntry]) -> None:
        publish, topic, delivered = self._producer.publish, self._config.topic, self._on_delivery
        for entry in entries:
            key, value, headers = encode_event(entry)
            publish(topic, key, value, partition=partition, headers=headers, on_delivery=delivered)
        self._cursors[partition] = entries[-1].event_seq
        self._queued += len(entries)

    def _lose(self, partition: int) -> None:
        del self._cursors[partition]
        self._covered.pop(partition, None)
        self._behind.pop(partition, None)
        self._suspects.pop(partition, None)

    def _forget(self) -> None:
        """Forget every cursor: each partition resumes from its tail in the topic."""
        self._cursors.clear()
        self._covered.clear()
        self._behind.clear()
        self._suspects.clear()

    def _flush_all(self) -> None:
        """Wait until every queued record is delivered or failed.

        Raises:
            LogUnavailable: the queue did not empty in time, or a record failed.
        """
        if self._producer.flush(self._config.flush_timeout_s) > 0:
            raise LogUnavailable(f"events not delivered within {self._config.flush_timeout_s:g} s")
        self._raise_delivery_errors()

    def _raise_delivery_errors(self) -> None:
        errors, self._delivery_errors = self._delivery_errors, []
        if errors:
            raise LogUnavailable(f"{len(errors)} events not delivered: {errors[0]}")

    def _on_delivery(self, error: Exception | None) -> None:
        self._reported += 1
        if error is None:
            self._delivered += 1
        else:
            self._delivery_errors.append(error)

    def _count_delivered(self) -> None:
        if self._delivered > self._counted:
            metrics.EVENTS_PUBLISHED.inc(self._delivered - self._counted)
            self._counted = self._delivered

    def _tail_sequence(self, partition: int) -> int:
        """The sequence of the partition's newest event in the topic (0: none yet)."""
        record = self._log.last_record(self._config.topic, partition)
        return 0 if record is None else decode_event(record.value).sequence
