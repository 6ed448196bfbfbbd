"""The event publisher's cursor: kept in the topic, never in the database."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import astuple, replace
from typing import Any, cast

import pytest
from google.protobuf import json_format

from ledgerd.domain.amounts import MAX_SCALED, format_amount
from ledgerd.domain.model import LEGS_PER_MESSAGE, AccountLock, ChangeType, JournalEntry
from ledgerd.errors import LogUnavailable, PoisonMessage
from ledgerd.events.codec import (
    SCHEMA,
    SCHEMA_HEADER,
    decode_event,
    encode_event,
    encode_event_row,
    event_of,
)
from ledgerd.events.handoff import CommittedJournal, HandOffQueue
from ledgerd.events.publisher import EventPublisher, PublisherConfig
from ledgerd.log.base import DeliveryCallback, EventLog, LogRecord
from ledgerd.store.base import JournalRow, Store

TOPIC = "balance-events"


class FakeLog:
    """Partitions as lists; a producer's records land at flush, or fail when told to."""

    partition_count = 2

    def __init__(self) -> None:
        self.records: dict[int, list[LogRecord]] = {0: [], 1: []}
        self.fail_next_flush = False

    def producer(self, *, gapless: bool = False, linger_ms: int | None = None) -> FakeProducer:
        assert gapless, "events must not leave gaps"
        return FakeProducer(self)

    def last_record(self, topic: str, partition: int) -> LogRecord | None:
        found = self.records[partition]
        return found[-1] if found else None

    def sequences(self, partition: int) -> list[int]:
        return [decode_event(r.value).sequence for r in self.records[partition]]


class FakeProducer:
    def __init__(self, log: FakeLog) -> None:
        self._log = log
        self._queued: list[tuple[LogRecord, DeliveryCallback | None]] = []

    def publish(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        *,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        assert partition is not None
        offset = len(self._log.records[partition]) + len(self._queued)
        record = LogRecord(topic, partition, offset, key, value, tuple(headers))
        self._queued.append((record, on_delivery))

    def flush(self, timeout_s: float) -> int:
        queued, self._queued = self._queued, []
        failing = self._log.fail_next_flush and bool(queued)
        self._log.fail_next_flush &= not failing
        for index, (record, on_delivery) in enumerate(queued):
            # When failing, the first half lands and the rest is lost: a prefix, as an
            # idempotent producer's ordering guarantees.
            delivered = not failing or index < len(queued) // 2
            if delivered:
                self._log.records[record.partition].append(record)
            if on_delivery is not None:
                on_delivery(None if delivered else LogUnavailable("lost"))
        return 0

    def poll(self, timeout_s: float) -> None:
        """Deliveries happen at flush."""

    def close(self) -> None:
        """Nothing held."""


class FakeJournal:
    """scan_events over a list of entries per partition."""

    def __init__(self) -> None:
        self.entries: dict[int, list[JournalEntry]] = {0: [], 1: []}

    def add(self, partition: int, count: int) -> None:
        for _ in range(count):
            seq = len(self.entries[partition]) * 1024 + 1
            version = len(self.entries[partition]) + 1
            self.entries[partition].append(
                JournalEntry(
                    f"r{partition}-{version}",
                    10 + partition,
                    "USD",
                    ChangeType.DEPOSIT,
                    1,
                    version,
                    0,
                    version,
                    1_700_000_000_000,
                    partition=partition,
                    event_seq=seq,
                )
            )

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        return [e for e in self.entries[partition] if e.event_seq > after_seq][:limit]


def publisher(
    journal: FakeJournal, log: FakeLog, owned: Collection[int], batch: int = 100
) -> EventPublisher:
    owned_now = set(owned)
    return EventPublisher(
        cast(Store, journal),
        cast(EventLog, log),
        lambda: owned_now,
        PublisherConfig(topic=TOPIC, batch_max_events=batch),
    )


def all_sequences(journal: FakeJournal, partition: int) -> list[int]:
    return [e.event_seq for e in journal.entries[partition]]


def test_each_entry_is_published_once_in_order_to_its_partition() -> None:
    """Two rounds publish every entry of each owned partition once, in event_seq order."""
    journal, log = FakeJournal(), FakeLog()
    journal.add(0, 3)
    journal.add(1, 2)
    events = publisher(journal, log, {0, 1})
    assert events.run_until_idle() == 5
    journal.add(0, 2)
    assert events.run_until_idle() == 2
    assert log.sequences(0) == all_sequences(journal, 0)
    assert log.sequences(1) == all_sequences(journal, 1)


def test_a_new_publisher_resumes_after_the_topic_tail_without_duplicates() -> None:
    """The cursor is the topic's newest event: a restarted process republishes nothing."""
    journal, log = FakeJournal(), FakeLog()
    journal.add(0, 4)
    publisher(journal, log, {0}).run_until_idle()
    journal.add(0, 3)
    restarted = publisher(journal, log, {0})
    assert restarted.run_until_idle() == 3
    assert log.sequences(0) == all_sequences(journal, 0)


def test_a_failed_flush_resumes_from_what_reached_the_topic() -> None:
    """A round whose records partly failed forgets its cursors; the next round reads the
    tail and publishes exactly the missing ones."""
    journal, log = FakeJournal(), FakeLog()
    journal.add(0, 6)
    events = publisher(journal, log, {0})
    log.fail_next_flush = True
    with pytest.raises(LogUnavailable):
        events.run_once()
    assert len(log.records[0]) == 3
    assert events.cursors == {}
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)


def test_only_owned_partitions_are_published() -> None:
    """A partition the consumer does not own is left to its owner."""
    journal, log = FakeJournal(), FakeLog()
    journal.add(0, 2)
    journal.add(1, 2)
    publisher(journal, log, {1}).run_until_idle()
    assert log.records[0] == []
    assert log.sequences(1) == all_sequences(journal, 1)


def test_a_regained_partition_resumes_from_the_tail_its_other_owner_left() -> None:
    """Lost, published by another process meanwhile, then regained: nothing is repeated."""
    journal, log = FakeJournal(), FakeLog()
    owned = {0}
    events = EventPublisher(
        cast(Store, journal), cast(EventLog, log), lambda: owned, PublisherConfig(topic=TOPIC)
    )
    journal.add(0, 2)
    events.run_until_idle()
    owned.clear()
    events.run_until_idle()
    assert events.cursors == {}
    journal.add(0, 2)
    publisher(journal, log, {0}).run_until_idle()  # the other owner
    journal.add(0, 1)
    owned.add(0)
    assert events.run_until_idle() == 1
    assert log.sequences(0) == all_sequences(journal, 0)


def test_more_than_a_batch_is_published_in_several_rounds() -> None:
    """A round publishes at most a batch per partition and says there is more."""
    journal, log = FakeJournal(), FakeLog()
    journal.add(0, 7)
    events = publisher(journal, log, {0}, batch=3)
    assert events.run_once() == (3, True)
    assert events.run_until_idle() == 4
    assert log.sequences(0) == all_sequences(journal, 0)


def test_a_tail_that_is_not_an_event_stops_the_publisher() -> None:
    """Something else wrote to the topic: PoisonMessage (not retriable), nothing published."""
    journal, log = FakeJournal(), FakeLog()
    log.records[0].append(LogRecord(TOPIC, 0, 0, b"1", b"not json"))
    journal.add(0, 1)
    with pytest.raises(PoisonMessage):
        publisher(journal, log, {0}).run_once()
    assert len(log.records[0]) == 1


def test_the_record_is_keyed_by_user_and_names_its_schema() -> None:
    """Key: decimal user id; header schema: ledgerd.v1.BalanceEvent; value round-trips."""
    journal = FakeJournal()
    journal.add(1, 1)
    (entry,) = journal.entries[1]
    key, value, headers = encode_event(entry)
    assert key == b"11"
    assert SCHEMA == "ledgerd.v1.BalanceEvent"
    assert dict(headers) == {SCHEMA_HEADER: SCHEMA.encode()}
    event = decode_event(value)
    assert (event.partition, event.sequence, event.entry.request_id) == (1, 1, "r1-1")
    fields: Mapping[str, Any] = json.loads(value)
    assert fields["entry"]["memo"] == ""  # every field present, for readers without proto


def protobuf_json(entry: JournalEntry) -> bytes:
    """The event's JSON as protobuf's generic printer writes it (what encode_event mirrors)."""
    return json_format.MessageToJson(
        event_of(entry),
        preserving_proto_field_name=True,
        indent=None,
        always_print_fields_with_no_presence=True,
    ).encode()


@pytest.mark.parametrize("change_type", list(ChangeType))
def test_the_fast_encoding_is_protobufs_json_byte_for_byte(change_type: ChangeType) -> None:
    """encode_event's hand-built JSON has the very bytes of json_format's, for every change
    type, with the optional fields set (a transfer leg, a memo to escape, a lock, a hold) and
    left empty."""
    bare = JournalEntry("r-1", 1, "USD", change_type, 1, 0, 0, 1, 1, partition=2, event_seq=1)
    full = JournalEntry(
        "t-1~in", 2**64 - 1, "BTC", change_type, 15 * 10**17, 2**100, MAX_SCALED, 3,
        1_700_000_000_123, 'memo "é" \\ \n\t\x01 \u2028 ✓ 😀 </script>', "t-1", 9,
        partition=1023, event_seq=2**63 + 5,
    )  # fmt: skip
    locked = replace(full, actor="ops-key", lock_after=AccountLock.DEBITS)
    held = replace(full, hold_id="h-1")
    for entry in (bare, full, locked, held):
        _, value, _ = encode_event(entry)
        assert value == protobuf_json(entry)


# The fields that may hold their default (0 or ""), which protobuf prints last.
DEFAULTABLE = (
    "request_id", "user_id", "currency", "version", "applied_at_ms", "memo", "transfer_id",
    "counterparty_user_id", "partition", "event_seq", "actor", "lock_after", "hold_id",
)  # fmt: skip


def test_fields_at_their_default_come_last_as_protobuf_prints_them() -> None:
    """Whichever fields hold 0 or "" (partition 0, a transfer leg without memo, ...), the
    bytes are json_format's: defaults after the other fields, each group in number order."""
    entry = JournalEntry(
        "r-7", 42, "EUR", ChangeType.TRANSFER_OUT, 5, 10**18, 0, 2, 1_700_000_000_000,
        "m", "t-7", 43, partition=1, event_seq=9, actor="k", lock_after=int(AccountLock.FULL),
        hold_id="h-7",
    )  # fmt: skip
    for defaults in range(2 ** len(DEFAULTABLE)):
        zeroed = {
            name: type(getattr(entry, name))()
            for bit, name in enumerate(DEFAULTABLE)
            if defaults >> bit & 1
        }
        _, value, _ = encode_event(replace(entry, **zeroed))
        assert value == protobuf_json(replace(entry, **zeroed)), sorted(zeroed)


def row_of(entry: JournalEntry) -> JournalRow:
    """The journal row of an entry without a hold (rows have no hold id)."""
    assert not entry.hold_id
    return cast(JournalRow, astuple(entry)[:16])


def test_a_journal_row_is_encoded_as_its_entry_byte_for_byte() -> None:
    """encode_event_row gives the record encode_event gives for the row's entry, whichever
    fields hold their default (the fast path for a client's change, the general one else)."""
    entry = JournalEntry(
        "r-7", 42, "EUR", ChangeType.TRANSFER_OUT, 5, 10**18, 0, 2, 1_700_000_000_000,
        'm "é"', "t-7", 43, partition=1, event_seq=9, actor="k",
        lock_after=int(AccountLock.FULL),
    )  # fmt: skip
    names = [name for name in DEFAULTABLE if name != "hold_id"]
    for defaults in range(2 ** len(names)):
        zeroed = {
            name: type(getattr(entry, name))()
            for bit, name in enumerate(names)
            if defaults >> bit & 1
        }
        changed = replace(entry, **zeroed)
        assert encode_event_row(row_of(changed)) == encode_event(changed), sorted(zeroed)
    for change_type in ChangeType:
        client = JournalEntry("r-1", 1, "USD", change_type, 1, 0, 3, 1, 1, partition=2, event_seq=1)
        assert encode_event_row(row_of(client)) == encode_event(client)


class Untouchable(Sequence[JournalEntry]):
    """Entries a hand-off holds as rows too: the publisher must not make them."""

    def __init__(self, count: int) -> None:
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("an entry was made from rows")


# -- hand-offs: publishing from the commits the consumer hands over ----------------------


class CountingLog(FakeLog):
    """FakeLog that counts flushes (records land only at a flush)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def producer(self, *, gapless: bool = False, linger_ms: int | None = None) -> FakeProducer:
        assert gapless, "events must not leave gaps"
        return CountingProducer(self)


class CountingProducer(FakeProducer):
    def __init__(self, log: CountingLog) -> None:
        super().__init__(log)
        self._counting = log

    def flush(self, timeout_s: float) -> int:
        self._counting.flushes += 1
        return super().flush(timeout_s)


class CommitJournal(FakeJournal):
    """A journal written by commits over log offsets, as the consumer writes it: a commit
    applies consecutive offsets of a partition, journaling some of them (a rejected change
    journals nothing); reads are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.next_offsets: dict[int, int] = {0: 0, 1: 0}
        self.reads = 0

    def commit(self, partition: int, applied: int, rejected: int = 0) -> CommittedJournal:
        """Journal ``applied`` changes, then ``rejected`` ones; what the consumer hands off."""
        first = self.next_offsets[partition]
        entries = []
        for offset in range(first, first + applied):
            version = len(self.entries[partition]) + 1
            entries.append(
                JournalEntry(
                    f"r{partition}-{offset}", 10 + partition, "USD", ChangeType.DEPOSIT, 1,
                    version, 0, version, 1_700_000_000_000, partition=partition,
                    event_seq=offset * LEGS_PER_MESSAGE + 1,
                )
            )  # fmt: skip
        self.entries[partition].extend(entries)
        self.next_offsets[partition] = first + applied + rejected
        return CommittedJournal([(partition, first, self.next_offsets[partition])], entries)

    def scan_events(self, partition: int, after_seq: int, limit: int) -> Sequence[JournalEntry]:
        self.reads += 1
        return super().scan_events(partition, after_seq, limit)


def handing_publisher(
    journal: CommitJournal, log: FakeLog, owned: Collection[int], **config: Any
) -> EventPublisher:
    owned_now = set(owned)
    return EventPublisher(
        cast(Store, journal),
        cast(EventLog, log),
        lambda: owned_now,
        PublisherConfig(topic=TOPIC, **config),
    )


def test_commits_handed_off_are_published_without_reading_the_journal_or_flushing() -> None:
    """After the partition's first round (its tail and one journal read), each commit is
    published from its hand-off: no journal read, no flush per round."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0})
    assert events.run_once(check_journal=False) == (0, False)
    assert (journal.reads, log.flushes) == (1, 1)  # gained: flushed, tail read, journal read
    for applied, rejected in ((3, 0), (2, 4), (0, 2), (5, 1)):
        events.hand_off(journal.commit(0, applied, rejected))
        events.run_once(check_journal=False)
    assert (journal.reads, log.flushes) == (1, 1)
    assert events.cursors == {0: journal.entries[0][-1].event_seq}
    events.run_until_idle()  # burst mode: one journal check, then a flush
    assert journal.reads == 2
    assert log.sequences(0) == all_sequences(journal, 0)


@pytest.mark.parametrize("with_amount_texts", [False, True])
def test_a_hand_off_with_rows_publishes_them_as_its_entries_without_making_entries(
    with_amount_texts: bool,
) -> None:
    """A commit handed off as rows (the consumer's column path), with or without its
    amounts as text (taken from the messages), publishes byte for byte the records its
    entries would, each once, in order, and no entry object is made for them."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0})
    events.run_once(check_journal=False)
    for applied, rejected in ((3, 0), (2, 4), (5, 1)):
        committed = journal.commit(0, applied, rejected)
        rows = [row_of(entry) for entry in committed.entries]
        texts = [format_amount(e.amount) for e in committed.entries] if with_amount_texts else None
        handed = replace(committed, entries=Untouchable(len(rows)), rows=rows)
        events.hand_off(replace(handed, amount_texts=texts) if texts is not None else handed)
        events.run_once(check_journal=False)
    assert journal.reads == 1
    events.run_until_idle()
    expected = [encode_event(entry) for entry in journal.entries[0]]
    assert [(r.key, r.value, r.headers) for r in log.records[0]] == expected


def test_a_row_with_its_amount_text_is_encoded_as_without_it() -> None:
    """encode_event_row given format_amount of the row's amount writes the same record
    as when it formats the amount itself, for every change type and amount shape."""
    for change_type in ChangeType:
        for amount in (1, 15 * 10**17, 10**18, MAX_SCALED, 2 * 10**38 - 1):
            entry = JournalEntry(
                "r-1", 1, "USD", change_type, amount, 5, 0, 1, 1, partition=2, event_seq=1
            )
            row = row_of(entry)
            assert encode_event_row(row, format_amount(amount)) == encode_event_row(row)


def test_a_gap_in_the_hand_offs_is_read_from_the_journal_without_repeats_or_skips() -> None:
    """A commit that was never handed off (its successor starts above what was published)
    is read from the journal, with what followed it, each entry once; later hand-offs are
    published directly again."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0, 1})
    events.run_once(check_journal=False)
    events.hand_off(journal.commit(0, 2))
    journal.commit(0, 3, rejected=1)  # committed, never handed off
    events.hand_off(journal.commit(0, 2))
    events.hand_off(journal.commit(1, 2))
    reads = journal.reads
    assert events.run_once(check_journal=False) == (2 + 2 + 5, False)
    assert journal.reads == reads + 1  # partition 0 only
    events.hand_off(journal.commit(0, 1))
    events.run_once(check_journal=False)
    assert journal.reads == reads + 1
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)
    assert log.sequences(1) == all_sequences(journal, 1)


def test_a_full_hand_off_queue_drops_commits_and_they_are_read_from_the_journal() -> None:
    """Commits that do not fit the bounded queue are dropped (the consumer never waits);
    the publisher reads them from the journal, then publishes hand-offs directly again."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0}, handoff_max_events=8)
    events.run_once(check_journal=False)
    for _ in range(5):  # 4 entries each, plus one per commit: the second already fails
        events.hand_off(journal.commit(0, 3))
    reads = journal.reads
    assert events.run_once(check_journal=False) == (15, False)
    assert journal.reads == reads + 1
    events.hand_off(journal.commit(0, 2))
    events.run_once(check_journal=False)
    assert journal.reads == reads + 1
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)


def test_a_hand_off_read_from_the_journal_already_is_not_published_again() -> None:
    """A journal read may publish a commit before its hand-off is taken: the hand-off's
    entries up to the cursor are skipped, the rest published."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0})
    events.run_once(check_journal=False)
    first = journal.commit(0, 3, rejected=2)
    events.run_once(check_journal=True)  # an idle check finds the commit
    events.hand_off(first)
    events.hand_off(journal.commit(0, 2))
    reads = journal.reads
    assert events.run_once(check_journal=False) == (2, False)
    assert journal.reads == reads
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)


def test_a_hand_off_whose_batch_met_decided_requests_reads_the_journal() -> None:
    """A commit that failed ambiguously journaled entries nobody handed off; its retry
    finds those requests decided and hands off nothing for their offsets (incomplete):
    the publisher reads the journal rather than take the span as published."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0})
    events.run_once(check_journal=False)
    lost = journal.commit(0, 3)  # the first attempt committed after all
    retried = CommittedJournal(lost.spans, [], complete=False)
    events.hand_off(retried)
    events.run_once(check_journal=False)
    events.hand_off(journal.commit(0, 1))
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)


class OffsetJournal(CommitJournal):
    """A ``CommitJournal`` that also answers the consumer's committed offsets (the store's
    ``partition_offsets``), counting those reads apart."""

    def __init__(self) -> None:
        super().__init__()
        self.offset_reads = 0

    def get_positions(self, topic: str) -> Mapping[int, int]:
        assert topic == "balance-changes"
        self.offset_reads += 1
        return dict(self.next_offsets)


def offset_publisher(journal: OffsetJournal, log: FakeLog) -> EventPublisher:
    events = handing_publisher(journal, log, {0, 1}, source_topic="balance-changes")
    events.run_once(check_journal=False)  # gained: tails and one journal read each
    return events


def test_the_safety_net_reads_offsets_not_the_journal_when_every_commit_was_handed_off() -> None:
    """An idle check, with every commit handed off (rejections last among them), reads the
    committed offsets once and no partition's journal."""
    journal, log = OffsetJournal(), CountingLog()
    events = offset_publisher(journal, log)
    events.hand_off(journal.commit(0, 3, rejected=2))
    events.hand_off(journal.commit(1, 0, rejected=1))
    events.run_once(check_journal=False)
    reads = journal.reads
    for patient in (False, True, True):
        assert events.run_once(check_journal=True, patient=patient) == (0, False)
    assert (journal.reads, journal.offset_reads) == (reads, 3)
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)


def test_the_safety_net_reads_the_journal_of_a_commit_that_never_handed_off() -> None:
    """A commit whose hand-off never came, with nothing after it: its committed offset is
    past what was queued, so the check reads that partition's journal (only that one) and
    publishes it; a check that finds nothing more reads no journal."""
    journal, log = OffsetJournal(), CountingLog()
    events = offset_publisher(journal, log)
    events.hand_off(journal.commit(0, 2))
    events.run_once(check_journal=False)
    journal.commit(0, 3, rejected=1)  # committed, never handed off
    reads = journal.reads
    assert events.run_once(check_journal=True) == (3, False)
    assert journal.reads == reads + 1
    assert events.run_once(check_journal=True) == (0, False)
    assert journal.reads == reads + 1
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)


def test_a_patient_check_waits_one_check_for_a_hand_off_on_its_way() -> None:
    """The run loop's check: a gap found once may be a commit whose hand-off is on its
    way; if it comes, nothing is read back from the journal; a gap found again by the next
    check is read from the journal."""
    journal, log = OffsetJournal(), CountingLog()
    events = offset_publisher(journal, log)
    reads = journal.reads
    on_its_way = journal.commit(0, 2)
    assert events.run_once(check_journal=True, patient=True) == (0, False)
    events.hand_off(on_its_way)
    assert events.run_once(check_journal=False) == (2, False)
    assert events.run_once(check_journal=True, patient=True) == (0, False)
    assert journal.reads == reads
    journal.commit(1, 4)  # never handed off
    assert events.run_once(check_journal=True, patient=True) == (0, False)
    assert events.run_once(check_journal=True, patient=True) == (4, False)
    assert journal.reads == reads + 1
    events.run_until_idle()
    assert log.sequences(0) == all_sequences(journal, 0)
    assert log.sequences(1) == all_sequences(journal, 1)


def test_hand_offs_of_partitions_not_owned_are_left_to_their_owner() -> None:
    """A partition lost (or never owned) is not published from hand-offs; regained, it
    resumes from its tail in the topic and the journal."""
    journal, log = CommitJournal(), CountingLog()
    owned = {0}
    events = EventPublisher(
        cast(Store, journal), cast(EventLog, log), lambda: owned, PublisherConfig(topic=TOPIC)
    )
    events.run_once(check_journal=False)
    events.hand_off(journal.commit(1, 2))
    owned.clear()
    events.hand_off(journal.commit(0, 2))
    assert events.run_until_idle() == 0
    assert (log.records[0], log.records[1]) == ([], [])
    owned.add(0)
    events.hand_off(journal.commit(0, 1))
    assert events.run_until_idle() == 3
    assert log.sequences(0) == all_sequences(journal, 0)


def test_records_in_flight_past_the_limit_are_flushed() -> None:
    """Hand-off rounds do not flush, unless more records than ``in_flight_max_events``
    wait for their delivery reports."""
    journal, log = CommitJournal(), CountingLog()
    events = handing_publisher(journal, log, {0}, in_flight_max_events=4)
    events.run_once(check_journal=False)
    events.hand_off(journal.commit(0, 3))
    events.run_once(check_journal=False)
    assert log.flushes == 1
    events.hand_off(journal.commit(0, 3))
    events.run_once(check_journal=False)
    assert log.flushes == 2
    assert log.sequences(0) == all_sequences(journal, 0)


def test_the_hand_off_queue_is_bounded_by_entries_and_keeps_where_drops_end() -> None:
    """put refuses what does not fit; take returns the queued in order and, by partition,
    the newest dropped commit's next offset."""
    queue = HandOffQueue(max_events=6)
    journal = CommitJournal()
    first = journal.commit(0, 3)
    assert queue.put(first)
    assert not queue.put(journal.commit(0, 3, rejected=1))  # 3 + 1 more would make 8
    assert queue.put(journal.commit(1, 1))
    assert not queue.put(journal.commit(1, 5))
    assert queue
    queued, dropped = queue.take()
    assert [c.spans for c in queued] == [[(0, 0, 3)], [(1, 0, 1)]]
    assert dropped == {0: 7, 1: 6}
    assert not queue
    assert queue.take() == ([], {})


def test_a_currency_that_needs_escaping_is_still_printed_as_protobuf_does() -> None:
    """The fast path writes a currency unescaped only when it is ASCII letters and digits
    (the domain's codes); any other text, which the store never holds but a row could,
    goes through the general printer and stays json_format's bytes."""
    for currency in ('U"SD', "US\\D", "UŠD", "usd", "U SD"):
        entry = JournalEntry("r-1", 1, currency, ChangeType.DEPOSIT, 1, 1, 0, 1, 1,
                             partition=2, event_seq=1)  # fmt: skip
        assert encode_event_row(row_of(entry)) == encode_event(entry)
        assert encode_event(entry)[1] == protobuf_json(entry), currency
