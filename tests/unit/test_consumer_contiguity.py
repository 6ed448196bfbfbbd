"""The checks between a partition's stored position and its log (``consumer.contiguity``)."""

from __future__ import annotations

from ledgerd.consumer.contiguity import Contiguity, claim_gap
from ledgerd.log.base import LogRecord, PartitionIdentity
from ledgerd.store.base import PartitionClaim


def record(partition: int, offset: int) -> LogRecord:
    return LogRecord("t", partition, offset, b"k", b"v")


def claim(next_offset: int, topic_id: str = "id-1") -> PartitionClaim:
    return PartitionClaim("t", 0, epoch=1, next_offset=next_offset, topic_id=topic_id)


def test_a_claim_inside_what_the_log_holds_passes() -> None:
    """A position between the log's oldest offset and its end, same topic id: no gap."""
    log = PartitionIdentity("id-1", start_offset=5, end_offset=9)
    assert [claim_gap(claim(n), log) for n in (5, 7, 9)] == [None, None, None]


def test_a_claim_without_a_recorded_topic_id_is_checked_on_offsets_only() -> None:
    """A position recorded before topic ids (''): only its offset is checked."""
    assert claim_gap(claim(3, topic_id=""), PartitionIdentity("id-2", 0, 3)) is None


def test_a_position_before_the_oldest_record_is_a_retention_gap() -> None:
    """Records between the stored position and the log's start were removed unapplied."""
    gap = claim_gap(claim(2), PartitionIdentity("id-1", start_offset=5, end_offset=9))
    assert gap is not None and "records 2..4 were removed" in gap


def test_a_position_past_the_log_end_is_a_gap() -> None:
    """The log lost records it had: the store's position is beyond its end."""
    gap = claim_gap(claim(12), PartitionIdentity("id-1", start_offset=0, end_offset=9))
    assert gap is not None and "ends at offset 9" in gap


def test_another_topic_id_is_a_recreated_topic_even_where_offsets_fit() -> None:
    """A recreated topic is told by its id, whatever offsets it happens to hold."""
    gap = claim_gap(claim(3), PartitionIdentity("id-2", start_offset=0, end_offset=9))
    assert gap is not None and "recreated" in gap and "id-1" in gap


def test_consecutive_records_pass_and_advance_the_expectation() -> None:
    """Records continuing each partition pass in order; the next batch continues from them."""
    contiguity = Contiguity()
    contiguity.expect(0, 10)
    contiguity.expect(1, 0)
    kept, stopped = contiguity.admit([record(0, 10), record(1, 0), record(0, 11), record(1, 1)])
    assert stopped == {}
    assert [(r.partition, r.offset) for r in kept] == [(0, 10), (1, 0), (0, 11), (1, 1)]
    kept, stopped = contiguity.admit([record(0, 12)])
    assert [r.offset for r in kept] == [12] and stopped == {}


def test_a_first_record_beyond_the_claimed_offset_stops_only_its_partition() -> None:
    """Offset 15 read where 10 was due: partition 0 stops, partition 1 goes on."""
    contiguity = Contiguity()
    contiguity.expect(0, 10)
    contiguity.expect(1, 0)
    kept, stopped = contiguity.admit([record(0, 15), record(1, 0), record(0, 16), record(1, 1)])
    assert [(r.partition, r.offset) for r in kept] == [(1, 0), (1, 1)]
    assert list(stopped) == [0] and "records 10..14 are missing" in stopped[0]
    assert contiguity.stop(0, stopped[0]) is True
    assert contiguity.stopped == stopped


def test_a_gap_after_good_records_keeps_those_and_stops_at_the_gap() -> None:
    """Records before the gap are applied; none after it, in this batch or the next."""
    contiguity = Contiguity()
    contiguity.expect(0, 0)
    kept, stopped = contiguity.admit([record(0, 0), record(0, 1), record(0, 3)])
    assert [r.offset for r in kept] == [0, 1] and list(stopped) == [0]
    kept, stopped = contiguity.admit([record(0, 2), record(0, 4)])
    assert kept == [] and stopped == {}


def test_a_record_delivered_again_is_dropped_not_a_gap() -> None:
    """A poll spanning a rebalance returns the records fetched under the old assignment
    and the same offsets again from the new claim: each offset is admitted once, in order,
    and nothing stops (this stopped a partition in a role-split test)."""
    contiguity = Contiguity()
    contiguity.expect(0, 5)
    kept, stopped = contiguity.admit([record(0, 5), record(0, 6), record(0, 5), record(0, 6)])
    assert [r.offset for r in kept] == [5, 6] and stopped == {}
    kept, stopped = contiguity.admit([record(0, 0), record(0, 7)])
    assert [r.offset for r in kept] == [7] and stopped == {}


def test_a_stopped_partition_stays_stopped_through_seeks_until_forgotten() -> None:
    """A seek (rewind, pause) does not restart a stopped partition; losing it clears it."""
    contiguity = Contiguity()
    contiguity.expect(0, 0)
    assert contiguity.stop(0, "gap") is True
    assert contiguity.stop(0, "again") is False
    contiguity.expect(0, 0)
    assert contiguity.admit([record(0, 0)]) == ([], {})
    contiguity.forget(0)
    assert contiguity.stopped == {}
    contiguity.expect(0, 0)
    assert [r.offset for r in contiguity.admit([record(0, 0)])[0]] == [0]


def test_records_of_partitions_not_expected_are_dropped() -> None:
    """A partition not owned (revoked, fenced) contributes nothing."""
    contiguity = Contiguity()
    contiguity.expect(1, 0)
    kept, stopped = contiguity.admit([record(2, 0), record(1, 0)])
    assert [(r.partition, r.offset) for r in kept] == [(1, 0)] and stopped == {}
