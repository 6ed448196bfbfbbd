"""The consumer hands each commit's journal entries to the event publisher, which
publishes them without reading the journal back (embedded store and log)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from component_support import DLQ, TOPIC, Rig

from ledgerd.consumer.publish import committed_spans
from ledgerd.consumer.worker import BatchConsumer, ConsumerConfig
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType, JournalEntry
from ledgerd.domain.partitioning import user_key
from ledgerd.events.codec import decode_event
from ledgerd.events.publisher import EventPublisher, PublisherConfig
from ledgerd.log.base import LogRecord
from ledgerd.log.codec import encode_change
from ledgerd.store.base import PartitionClaim, Store
from ledgerd.store.sqlite import SqliteStore

EVENTS = "balance-events"


class CountingStore:
    """The rig's store, counting the publisher's journal reads."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.journal_reads = 0

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        self.journal_reads += 1
        return self._store.scan_events(partition, after_seq, limit)


def wired(rig: Rig) -> tuple[BatchConsumer, EventPublisher, CountingStore]:
    rig.log.ensure_topics([EVENTS])
    store = CountingStore(rig.store)
    events = EventPublisher(
        cast(Store, store), rig.log, lambda: range(3), PublisherConfig(topic=EVENTS)
    )
    consumer = BatchConsumer(
        rig.store,
        rig.log,
        rig.cache,
        None,
        ConsumerConfig(topic=TOPIC, dlq_topic=DLQ, poll_timeout_s=0.1),
        signer=rig.signer,
        on_committed=events.hand_off,
    )
    events.run_once(check_journal=False)  # gains every partition: one journal read each
    assert store.journal_reads == 3
    return consumer, events, store


def published(rig: Rig) -> list[tuple[int, int, int]]:
    """(partition, user, version) of every event in the topic, in topic order per partition."""
    reader = rig.log.reader(EVENTS, from_beginning=True)
    try:
        records = reader.poll_batch(10_000, 0.5)
    finally:
        reader.close()
    found = []
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode_event(record.value)
        found.append((record.partition, event.entry.user_id, event.entry.version))
    return found


def journaled(rig: Rig) -> list[tuple[int, int, int]]:
    return [
        (partition, entry.user_id, entry.version)
        for partition in range(3)
        for entry in rig.store.scan_events(partition, 0, 10_000)
    ]


def changes(prefix: str, users: int, kind: ChangeType = ChangeType.DEPOSIT) -> list[ChangeRequest]:
    return [ChangeRequest(f"{prefix}{u}", u, "USD", kind, SCALE) for u in range(1, users + 1)]


def test_committed_batches_are_published_from_their_hand_offs_without_journal_reads(
    rig: Rig,
) -> None:
    """Deposits, withdrawals and rejected withdrawals (offsets without an entry) over three
    partitions, in several batches: every entry published once, in journal order, none
    read back from the journal."""
    consumer, events, store = wired(rig)
    rejected = [ChangeRequest(f"x{n}", 99, "USD", ChangeType.WITHDRAW, SCALE) for n in range(3)]
    for batch in (
        changes("a", 12),
        changes("b", 12, ChangeType.WITHDRAW) + rejected,
        changes("c", 4, ChangeType.WITHDRAW),  # rejected: nothing left
        changes("d", 12),
    ):
        rig.accept(batch)
        rig.relay().run_until_idle()
        consumer.run_until_idle()
        events.run_once(check_journal=False)
    assert store.journal_reads == 3
    events.run_until_idle()
    consumer.close()
    events.close()
    assert len(journaled(rig)) == 36
    assert published(rig) == journaled(rig)


def test_a_batch_with_a_resent_message_is_caught_up_from_the_journal_once(rig: Rig) -> None:
    """A relay resend makes the batch meet a decided request: its hand-off is incomplete,
    so the publisher reads that partition's journal, and publishes nothing twice."""
    consumer, events, store = wired(rig)
    requests = changes("d", 6)
    rig.accept(requests)
    rig.relay().run_until_idle()
    producer = rig.log.producer()
    producer.publish(TOPIC, user_key(1), encode_change(requests[0]), partition=0)
    producer.flush(5)
    consumer.run_until_idle()
    events.run_once(check_journal=False)
    assert store.journal_reads > 3
    events.run_until_idle()
    consumer.close()
    events.close()
    assert published(rig) == journaled(rig)
    assert len(published(rig)) == 6


def test_committed_spans_run_from_each_partitions_first_record_to_its_position() -> None:
    """(partition, first offset applied, next offset), in the positions' order."""
    records = [LogRecord(TOPIC, p, o, b"k", b"v") for p, o in ((2, 7), (0, 3), (2, 8), (0, 4))]
    positions = [PartitionClaim(TOPIC, 0, 1, 5), PartitionClaim(TOPIC, 2, 1, 9)]
    assert committed_spans(records, positions) == [(0, 3, 5), (2, 7, 9)]
