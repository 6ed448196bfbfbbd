"""Finding the records a failed batch cannot pass: by partition first, then by record."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledgerd import metrics
from ledgerd.consumer import dead_letters
from ledgerd.consumer.isolate import Isolation, Refusal
from ledgerd.errors import DecisionFailed, StoreRejected, StoreUnavailable
from ledgerd.log.base import LogRecord


def record(partition: int, offset: int) -> LogRecord:
    return LogRecord("t", partition, offset, b"k", b"v", ())


class Store:
    """Commits parts unless they hold a refused record; remembers what it did."""

    def __init__(
        self,
        refused: Sequence[LogRecord] = (),
        raising: Sequence[LogRecord] = (),
        counted: int = 0,
    ) -> None:
        self.refused = set(refused)
        self.raising = set(raising)
        self.tries: list[list[tuple[int, int]]] = []
        self.committed: list[tuple[int, int]] = []
        self.parts: list[list[tuple[int, int]]] = []  # each commit's records
        self.dead: list[tuple[int, int]] = []
        self.counts: dict[tuple[int, int], int] = dict.fromkeys(
            ((r.partition, r.offset) for r in raising), counted
        )

    def apply(self, records: Sequence[LogRecord]) -> None:
        self.tries.append([(r.partition, r.offset) for r in records])
        if self.raising & set(records):
            raise DecisionFailed("boom")
        if self.refused & set(records):
            raise StoreRejected("mysql 4025: CONSTRAINT failed", 4025)
        self.committed += [(r.partition, r.offset) for r in records]
        self.parts.append([(r.partition, r.offset) for r in records])

    def dead_letter(self, record: LogRecord, error: Refusal) -> None:
        self.dead.append((record.partition, record.offset))

    def count_failure(self, record: LogRecord, error: DecisionFailed) -> int:
        key = (record.partition, record.offset)
        self.counts[key] += 1
        return self.counts[key]

    def isolation(self, max_decision_failures: int = 3) -> Isolation:
        return Isolation(self.apply, self.dead_letter, self.count_failure, max_decision_failures)


def batch(partitions: int, per_partition: int) -> list[LogRecord]:
    # Interleaved, as a poll returns them.
    return [record(p, o) for o in range(per_partition) for p in range(partitions)]


def test_a_refused_record_is_dead_lettered_and_every_other_record_commits() -> None:
    """Partition 1's record at offset 2 is refused: it alone goes to the DLQ."""
    records = batch(4, 4)
    store = Store(refused=[record(1, 2)])
    result = store.isolation().run(records, StoreRejected("refused"))
    assert store.dead == [(1, 2)]
    assert sorted(store.committed) == sorted({(r.partition, r.offset) for r in records} - {(1, 2)})
    assert [rec for rec, _ in result.dead_lettered] == [record(1, 2)]
    assert result.held == {}


def test_each_partitions_records_commit_in_log_order_around_the_culprit() -> None:
    """Within the refused partition, the records before the culprit commit before it is
    dead-lettered, and those after it only then."""
    records = batch(1, 8)
    store = Store(refused=[record(0, 5)])
    store.isolation().run(records, StoreRejected("refused"))
    assert [offset for _, offset in store.committed] == [0, 1, 2, 3, 4, 6, 7]
    assert store.dead == [(0, 5)]


def test_healthy_partitions_commit_whole_and_only_the_refused_one_is_split() -> None:
    """The split goes by partition first: each healthy partition's records commit in one
    part (never split by record), and only the refused partition is tried record by record."""
    records = batch(8, 4)
    store = Store(refused=[record(3, 0)])
    store.isolation().run(records, StoreRejected("refused"))
    for partition in (0, 1, 2, 4, 5, 6, 7):
        whole = [(partition, o) for o in range(4)]
        assert any(set(whole) <= set(part) for part in store.parts), partition
    assert max(len(part) for part in store.tries if {p for p, _ in part} == {3}) == 4
    # 8 partitions: log2(8) = 3 levels of halves, then the partition's own records.
    assert len(store.tries) <= 2 * 3 + 2 * 2 + 1


def test_several_refused_records_are_each_dead_lettered() -> None:
    """Two culprits in one partition and one in another: three DLQ entries, the rest commits."""
    records = batch(3, 6)
    culprits = [record(0, 1), record(0, 4), record(2, 5)]
    store = Store(refused=culprits)
    store.isolation().run(records, StoreRejected("refused"))
    assert sorted(store.dead) == [(0, 1), (0, 4), (2, 5)]
    assert len(store.committed) == len(records) - 3


def test_a_decision_failure_below_the_limit_holds_its_partition_from_that_record() -> None:
    """Deciding (1, 1) raised for the first time: it is counted, partition 1 is held at it
    (nothing after it is applied), the other partitions commit."""
    records = batch(3, 3)
    store = Store(raising=[record(1, 1)])
    result = store.isolation(max_decision_failures=3).run(records, DecisionFailed("boom"))
    assert store.counts == {(1, 1): 1}
    assert list(result.held) == [1]
    assert store.dead == []
    assert sorted(o for p, o in store.committed if p == 1) == [0]
    assert {(p, o) for p, o in store.committed if p != 1} == {
        (p, o) for p in (0, 2) for o in range(3)
    }


def test_a_decision_failure_at_the_limit_dead_letters_the_record() -> None:
    """The third failure (two counted before) dead-letters it; its partition moves on."""
    records = batch(2, 3)
    store = Store(raising=[record(0, 2)], counted=2)
    result = store.isolation(max_decision_failures=3).run(records, DecisionFailed("boom"))
    assert store.dead == [(0, 2)]
    assert result.held == {}
    assert len(store.committed) == len(records) - 1


def test_other_errors_propagate_after_what_already_committed() -> None:
    """The store going away mid-way is not a refusal: it propagates (the consumer pauses)."""
    records = batch(2, 2)

    def apply(part: Sequence[LogRecord]) -> None:
        if len(part) < len(records):
            raise StoreUnavailable("gone")
        raise StoreRejected("refused")

    isolation = Isolation(apply, lambda r, e: None, lambda r, e: 1, 3)
    with pytest.raises(StoreUnavailable):
        isolation.run(records, StoreRejected("refused"))


def test_every_dead_letter_reason_is_a_declared_metric_label() -> None:
    """The DLQ metric's series exist for each reason the consumer uses, before any is used."""
    used = {dead_letters.POISON, dead_letters.STORE_REJECTED, dead_letters.DECISION_FAILED}
    assert used == set(metrics.DLQ_REASONS)
    exposed = {
        sample.labels["reason"]
        for family in metrics.DLQ_MESSAGES.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert used <= exposed
