"""Partition positions on every store: the topic id they were read in, never backwards;
the oldest request without an outcome."""

from __future__ import annotations

import pytest

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType, Rejection, RejectReason
from ledgerd.errors import Fenced
from ledgerd.store.base import BatchCommit, PartitionClaim, Store


def request(n: int) -> ChangeRequest:
    return ChangeRequest(f"r{n}", 1, "USD", ChangeType.DEPOSIT, SCALE)


def move(store: Store, claim: PartitionClaim, next_offset: int) -> None:
    position = PartitionClaim(claim.topic, claim.partition, claim.epoch, next_offset)
    store.commit_batch(BatchCommit([position], [], [], 1))


def test_the_first_claim_records_the_topic_id_and_later_ones_keep_it(store: Store) -> None:
    """A claim records the log's topic id if none is; a later claim with another id gets
    the recorded one back (for the consumer to compare), and the record does not change."""
    first = store.claim_partition("t", 0, "id-a")
    assert (first.next_offset, first.topic_id) == (0, "id-a")
    move(store, first, 5)
    again = store.claim_partition("t", 0, "id-b")
    assert (again.next_offset, again.topic_id) == (5, "id-a")
    assert again.epoch > first.epoch
    assert store.claim_partition("t", 0, "id-b").topic_id == "id-a"


def test_a_position_without_a_topic_id_gets_one_at_its_next_claim(store: Store) -> None:
    """A claim made without an id (as before topic ids) records '' and the next one fills it."""
    assert store.claim_partition("t", 1).topic_id == ""
    assert store.claim_partition("t", 1, "id-a").topic_id == "id-a"
    assert store.claim_partition("t", 1, "id-c").topic_id == "id-a"


def test_a_commit_never_moves_an_offset_backwards(store: Store) -> None:
    """Under the current epoch, a lower next_offset is refused (Fenced) and writes nothing;
    the same offset again is accepted."""
    store.accept_requests(["r1"], lambda _: [request(1)], 1000)
    claim = store.claim_partition("t", 0, "id-a")
    move(store, claim, 10)
    move(store, claim, 10)
    with pytest.raises(Fenced):
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 0, claim.epoch, 4)],
                [],
                [Rejection(request(1), RejectReason.INSUFFICIENT_AVAILABLE)],
                1,
            )
        )
    assert store.get_positions("t") == {0: 10}
    assert not store.decided_requests(["r1"])


def test_oldest_unfinished_is_the_oldest_row_without_an_outcome_whatever_its_status(
    store: Store,
) -> None:
    """PENDING, SENT and FAILED rows all count; a row with an outcome does not."""
    assert store.oldest_unfinished_ms() is None
    store.accept_requests(["r1"], lambda _: [request(1)], 1000)
    store.accept_requests(["r2"], lambda _: [request(2)], 2000)
    store.accept_requests(["r3"], lambda _: [request(3)], 3000)
    store.mark_sent(["r2"], 2500)
    store.mark_failed(["r3"], 3500)
    assert store.oldest_unfinished_ms() == 1000
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 1)],
            [],
            [Rejection(request(1), RejectReason.INSUFFICIENT_AVAILABLE)],
            1,
        )
    )
    assert store.oldest_unfinished_ms() == 2000
    store.mark_sent(["r3"], 4000)
    assert store.oldest_unfinished_ms() == 2000
