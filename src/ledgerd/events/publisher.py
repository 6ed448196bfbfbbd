"""The event publisher: tails the journal of the partitions this process's consumer owns
and publishes each entry once to ``balance-events``, to the same partition number.

Its cursor lives in the topic, not in the database: on gaining a partition it reads the
partition's newest event and resumes after its ``sequence`` (the entry's ``event_seq``).
Records of a partition are published in order by a gapless producer (idempotent, no
delivery timeout: see ``EventLog.producer``), and the queue is flushed empty before any
tail is read, so what the topic holds is always a prefix of the journal: a crash between
a publish and anything else neither republishes nor skips. A process that still
publishes after its partition moved (a paused or partitioned owner, until it notices)
can duplicate events; readers de-duplicate by (user_id, currency, version).
Entries journaled before schema 5 have no position (event_seq 0) and are not published.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog

from ledgerd import metrics
from ledgerd.errors import LedgerError, LogUnavailable
from ledgerd.events.codec import decode_event, encode_event
from ledgerd.log.base import EventLog, LogProducer
from ledgerd.store.base import Store
from ledgerd.support.supervisor import Lifeline

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    topic: str = "balance-events"
    # Journal entries read (and published) per partition per round.
    batch_max_events: int = 5000
    # Between rounds when nothing woke the loop: the timer behind the consumer's wake-ups.
    poll_interval_s: float = 0.2
    # How long one flush may take before the round fails (and the next one retries).
    flush_timeout_s: float = 30.0
    retry_base_s: float = 0.5


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
        self._producer: LogProducer = event_log.producer(gapless=True)
        # The event_seq of the newest event in each owned partition's topic partition.
        self._cursors: dict[int, int] = {}
        self._woken = threading.Event()
        self._delivery_errors: list[Exception] = []
        self._closed = False

    @property
    def cursors(self) -> dict[int, int]:
        """The last published event_seq, by owned partition (a copy)."""
        return dict(self._cursors)

    def wake(self) -> None:
        """Ask for a round now (after a consumer commit); cheap, from any thread."""
        self._woken.set()

    # -- lifecycle ------------------------------------------------------------
    def run(self, lifeline: Lifeline) -> None:
        """Publish until ``lifeline.stopping``; retriable errors wait and retry from the tails,
        anything else reaches the supervisor (which calls ``run`` again)."""
        # Called again after a crash: whatever the topic holds is the truth.
        self._cursors.clear()
        failures = 0
        while not lifeline.stopping:
            lifeline.beat()
            self._woken.clear()
            try:
                _, full = self.run_once()
            except LedgerError as exc:
                if not exc.retriable:
                    raise
                failures += 1
                log.warning("event publishing failed; retrying", error=str(exc))
                self._cursors.clear()
                lifeline.wait(min(self._config.retry_base_s * 2 ** (failures - 1), 10.0))
                continue
            failures = 0
            if not full:
                self._woken.wait(self._config.poll_interval_s)

    def close(self) -> None:
        """Deliver what is queued and release the producer; idempotent. After ``run`` returned."""
        if not self._closed:
            self._closed = True
            self._producer.close()

    def run_until_idle(self, max_rounds: int = 1_000_000) -> int:
        """Publish until the journal has nothing new (burst mode); returns events published."""
        total = 0
        for _ in range(max_rounds):
            published, full = self.run_once()
            total += published
            if not full:
                break
        return total

    # -- one round ------------------------------------------------------------
    def run_once(self) -> tuple[int, bool]:
        """Publish what the owned partitions journaled since their cursors; returns the
        events published and whether a partition had more than one batch.

        Raises:
            LogUnavailable: a publish failed; the round's cursors are forgotten.
            PoisonMessage: a partition's newest record is not an event.
            StoreUnavailable: the journal could not be read.
        """
        owned = set(self._owned())
        for partition in set(self._cursors) - owned:
            del self._cursors[partition]  # lost: whoever gains it reads its tail
        gained = sorted(owned - set(self._cursors))
        if gained:
            self._flush_all()
            for partition in gained:
                self._cursors[partition] = self._tail_sequence(partition)
        sent: dict[int, int] = {}
        full = False
        now_ms = time.time() * 1000
        for partition in sorted(owned):
            entries = self._store.scan_events(
                partition, self._cursors[partition], self._config.batch_max_events
            )
            lag_s = (now_ms - entries[0].applied_at_ms) / 1000 if entries else 0.0
            metrics.EVENTS_LAG.labels(partition=str(partition)).set(max(lag_s, 0.0))
            if not entries:
                continue
            full |= len(entries) >= self._config.batch_max_events
            for entry in entries:
                key, value, headers = encode_event(entry)
                self._producer.publish(
                    self._config.topic,
                    key,
                    value,
                    partition=partition,
                    headers=headers,
                    on_delivery=self._delivered,
                )
            sent[partition] = len(entries)
            self._cursors[partition] = entries[-1].event_seq
        if sent:
            try:
                self._flush_all()
            except LogUnavailable:
                # Some of them may be in the topic: the tails will say which.
                self._cursors.clear()
                raise
            metrics.EVENTS_PUBLISHED.inc(sum(sent.values()))
        return sum(sent.values()), full

    def _flush_all(self) -> None:
        """Wait until every queued record is delivered or failed.

        Raises:
            LogUnavailable: the queue did not empty in time, or a record failed.
        """
        if self._producer.flush(self._config.flush_timeout_s) > 0:
            raise LogUnavailable(f"events not delivered within {self._config.flush_timeout_s:g} s")
        errors, self._delivery_errors = self._delivery_errors, []
        if errors:
            raise LogUnavailable(f"{len(errors)} events not delivered: {errors[0]}")

    def _delivered(self, error: Exception | None) -> None:
        if error is not None:
            self._delivery_errors.append(error)

    def _tail_sequence(self, partition: int) -> int:
        """The sequence of the partition's newest event in the topic (0: none yet)."""
        record = self._log.last_record(self._config.topic, partition)
        return 0 if record is None else decode_event(record.value).sequence
