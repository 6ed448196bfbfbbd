"""Change events out on every event-log backend: the publisher over a real store and log,
and the log's tail and group-less reader it and TailEvents rely on."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from ledgerd.domain.model import Balance, ChangeType, JournalEntry
from ledgerd.events.codec import decode_event
from ledgerd.events.handoff import CommittedJournal
from ledgerd.events.publisher import EventPublisher, PublisherConfig
from ledgerd.log.base import EventLog, LogReader, LogRecord
from ledgerd.store.base import BatchCommit, PartitionClaim, Store
from ledgerd.store.sqlite import SqliteStore

LEDGER_TOPIC = "balance-changes"


@pytest.fixture
def journal_store(tmp_path: Path) -> Store:
    store = SqliteStore(tmp_path / "store.sqlite")
    store.migrate()
    return store


class Journal:
    """Writes journal rows the way the consumer does: one commit_batch per log message."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._offsets: dict[int, int] = {}
        self._versions: dict[int, int] = {}
        self.written: dict[int, list[JournalEntry]] = {}

    def apply(self, partition: int, user_id: int, deposits: int) -> CommittedJournal:
        """Commit ``deposits`` messages of one user; returns what the consumer hands off."""
        claim = self._store.claim_partition(LEDGER_TOPIC, partition)
        entries, balance = [], None
        first = self._offsets.get(partition, 0)
        for _ in range(deposits):
            offset = self._offsets.get(partition, 0)
            self._offsets[partition] = offset + 1
            version = self._versions.get(user_id, 0) + 1
            self._versions[user_id] = version
            entries.append(
                JournalEntry(
                    uuid.uuid4().hex,
                    user_id,
                    "USD",
                    ChangeType.DEPOSIT,
                    1,
                    version,
                    0,
                    version,
                    int(time.time() * 1000),
                    partition=partition,
                    event_seq=offset * 1024 + 1,
                )
            )
            balance = Balance(user_id, "USD", version, 0, version)
        assert balance is not None
        position = PartitionClaim(LEDGER_TOPIC, partition, claim.epoch, self._offsets[partition])
        self._store.commit_batch(BatchCommit([position], entries, [], 0))
        self.written.setdefault(partition, []).extend(entries)
        return CommittedJournal([(partition, first, self._offsets[partition])], entries)


def read_events(reader: LogReader, want: int, timeout_s: float = 30.0) -> list[LogRecord]:
    records: list[LogRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < want and time.monotonic() < deadline:
        records += reader.poll_batch(want - len(records), 0.5)
    return records


def published(event_log: EventLog, topic: str, want: int) -> dict[int, list[tuple[int, int]]]:
    """(user, version) of every event in the topic, by partition, read from the beginning."""
    reader = event_log.reader(topic, from_beginning=True)
    try:
        records = read_events(reader, want)
        assert reader.poll_batch(10, 0.5) == []  # no more than wanted
    finally:
        reader.close()
    found: dict[int, list[tuple[int, int]]] = {}
    for record in records:
        event = decode_event(record.value)
        assert record.key == str(event.entry.user_id).encode()
        assert event.partition == record.partition
        found.setdefault(record.partition, []).append((event.entry.user_id, event.entry.version))
    return found


def expected(journal: Journal) -> dict[int, list[tuple[int, int]]]:
    return {p: [(e.user_id, e.version) for e in entries] for p, entries in journal.written.items()}


def make_publisher(store: Store, event_log: EventLog, topic: str) -> EventPublisher:
    return EventPublisher(
        store, event_log, lambda: range(event_log.partition_count), PublisherConfig(topic=topic)
    )


def test_every_journal_entry_is_published_once_in_version_order(
    event_log: EventLog, topic: str, journal_store: Store
) -> None:
    """Entries of several partitions and users reach the same partition of the topic,
    once each, in version order per account."""
    event_log.ensure_topics([topic])
    journal = Journal(journal_store)
    for partition, user in ((0, 7), (1, 8), (2, 9), (0, 10)):
        journal.apply(partition, user, 3)
    publisher = make_publisher(journal_store, event_log, topic)
    try:
        assert publisher.run_until_idle() == 12
        journal.apply(1, 8, 2)
        assert publisher.run_until_idle() == 2
    finally:
        publisher.close()
    assert published(event_log, topic, 14) == expected(journal)


def test_a_restarted_publisher_resumes_from_the_topic_without_duplicates(
    event_log: EventLog, topic: str, journal_store: Store
) -> None:
    """A new publisher (a restarted process) reads each partition's tail and publishes
    only what came after it."""
    event_log.ensure_topics([topic])
    journal = Journal(journal_store)
    journal.apply(0, 7, 4)
    journal.apply(2, 9, 1)
    first = make_publisher(journal_store, event_log, topic)
    first.run_until_idle()
    first.close()
    journal.apply(0, 7, 2)
    journal.apply(1, 8, 3)
    second = make_publisher(journal_store, event_log, topic)
    try:
        assert second.run_until_idle() == 5
    finally:
        second.close()
    assert published(event_log, topic, 10) == expected(journal)


def test_hand_offs_with_a_gap_and_an_overflow_publish_each_entry_once_in_order(
    event_log: EventLog, topic: str, journal_store: Store
) -> None:
    """Commits handed off are published directly; one never handed off and several
    dropped by the full hand-off queue are read from the journal: the topic holds every
    entry once, in journal order, across several rounds without a flush between them."""
    event_log.ensure_topics([topic])
    journal = Journal(journal_store)
    publisher = EventPublisher(
        journal_store,
        event_log,
        lambda: range(event_log.partition_count),
        PublisherConfig(topic=topic, handoff_max_events=10),
    )
    try:
        publisher.run_once(check_journal=False)
        publisher.hand_off(journal.apply(0, 7, 2))
        publisher.hand_off(journal.apply(1, 8, 2))
        publisher.run_once(check_journal=False)
        journal.apply(0, 7, 3)  # never handed off
        publisher.hand_off(journal.apply(0, 10, 1))
        publisher.run_once(check_journal=False)
        for _ in range(4):  # 5 held per hand-off: the third and fourth are dropped
            publisher.hand_off(journal.apply(2, 9, 4))
        publisher.hand_off(journal.apply(1, 8, 1))
        publisher.run_once(check_journal=False)
        publisher.hand_off(journal.apply(2, 9, 1))
        assert publisher.run_until_idle() == 1
    finally:
        publisher.close()
    assert published(event_log, topic, 26) == expected(journal)


def test_last_record_is_the_newest_of_its_partition(event_log: EventLog, topic: str) -> None:
    """None while empty, then the record published last to that partition."""
    event_log.ensure_topics([topic])
    assert event_log.last_record(topic, 1) is None
    producer = event_log.producer()
    for value in (b"a", b"b", b"c"):
        producer.publish(topic, b"k", value, partition=1)
    producer.publish(topic, b"k", b"other", partition=2)
    assert producer.flush(30.0) == 0
    producer.close()
    last = event_log.last_record(topic, 1)
    assert last is not None
    assert (last.partition, last.offset, last.value) == (1, 2, b"c")
    assert event_log.last_record(topic, 0) is None


def test_a_new_topic_is_readable_at_once(event_log: EventLog, topic: str) -> None:
    """Reads right after ensure_topics wait out the partitions' leader election
    (Kafka answered NOT_LEADER_FOR_PARTITION to the first read of a new topic in CI)."""
    topics = [f"{topic}-{n}" for n in range(4)]
    event_log.ensure_topics(topics)
    for name in topics:
        for partition in range(3):
            assert event_log.last_record(name, partition) is None
        reader = event_log.reader(name, from_beginning=True)
        try:
            assert list(reader.poll_batch(10, 0.2)) == []
        finally:
            reader.close()


def test_a_reader_from_the_end_sees_only_what_is_published_after_it_opened(
    event_log: EventLog, topic: str
) -> None:
    """from_beginning=False skips what the topic held; True reads it all."""
    event_log.ensure_topics([topic])
    producer = event_log.producer()
    producer.publish(topic, b"k", b"old", partition=0)
    assert producer.flush(30.0) == 0
    newest = event_log.reader(topic, from_beginning=False)
    oldest = event_log.reader(topic, from_beginning=True)
    try:
        producer.publish(topic, b"k", b"new", partition=2)
        assert producer.flush(30.0) == 0
        assert [r.value for r in read_events(newest, 1)] == [b"new"]
        assert sorted(r.value for r in read_events(oldest, 2)) == [b"new", b"old"]
    finally:
        newest.close()
        oldest.close()
        producer.close()
