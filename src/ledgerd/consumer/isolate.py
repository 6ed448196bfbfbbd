"""Finding the records a batch cannot pass, so that they cost their partition one DLQ entry.

A batch whose commit the database refuses for good (``StoreRejected``), or whose
decision raised (``DecisionFailed``), is applied again in parts: split by
partition first (partitions are independent: each account lives in one), then,
within the partition that still fails, by record, halving and keeping the log's
order (a partition's first half is settled, applied or dead-lettered, before its
second half is tried). A part that passes is committed on the spot; a record that
fails alone is the culprit:

* refused by the store: dead-lettered at once (the same values are refused every time);
* its decision raised: the failure is counted in the store (so the count survives
  restarts); after ``max_decision_failures`` it is dead-lettered, before that its
  partition is held (paused, and tried again later) with the records after it, while
  the other partitions go on.

Healthy partitions of the batch therefore commit, at most ``log2(partitions)``
attempts later, and are never paused for another partition's record. The
control flow is here, without I/O; the consumer (``worker``) passes the
operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ledgerd.errors import DecisionFailed, StoreRejected
from ledgerd.log.base import LogRecord

# The errors a part can fail with that make it worth splitting further.
Refusal = StoreRejected | DecisionFailed


@dataclass(slots=True)
class IsolationResult:
    """What happened to a failed batch's records."""

    # Records dead-lettered, each with the error that condemned it.
    dead_lettered: list[tuple[LogRecord, Refusal]] = field(default_factory=list)
    # Partitions held at a record whose decision failed fewer than the allowed times;
    # nothing from that record on was applied.
    held: dict[int, Refusal] = field(default_factory=dict)


@dataclass(slots=True)
class Isolation:
    """Applies a failed batch in parts (see the module docstring).

    ``apply`` decides and commits some records (in log order) or raises a ``Refusal``;
    ``dead_letter`` sends one record to the DLQ and moves its partition past it;
    ``count_failure`` counts one more decision failure of a record, durably, and
    returns the count so far. Other errors (the store unavailable, fencing) propagate:
    parts committed before them stay committed.
    """

    apply: Callable[[Sequence[LogRecord]], None]
    dead_letter: Callable[[LogRecord, Refusal], None]
    count_failure: Callable[[LogRecord, DecisionFailed], int]
    max_decision_failures: int
    result: IsolationResult = field(default_factory=IsolationResult)

    def run(self, records: Sequence[LogRecord], error: Refusal) -> IsolationResult:
        """Settle ``records``, which failed together with ``error``."""
        by_partition: dict[int, list[LogRecord]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        groups = [by_partition[p] for p in sorted(by_partition)]
        if groups:
            self._partitions(groups, error)
        return self.result

    def _partitions(self, groups: Sequence[list[LogRecord]], failed: Refusal | None) -> None:
        """Settle whole partitions; ``failed``: they are known to fail together."""
        if failed is None:
            failed = self._try([r for group in groups for r in group])
            if failed is None:
                return
        if len(groups) == 1:
            self._records(groups[0], failed)
            return
        middle = len(groups) // 2
        self._partitions(groups[:middle], None)
        self._partitions(groups[middle:], None)

    def _records(self, records: Sequence[LogRecord], failed: Refusal | None) -> bool:
        """Settle one partition's records in order; False once the partition is held
        (the caller must not apply anything after them)."""
        if failed is None:
            failed = self._try(records)
            if failed is None:
                return True
        if len(records) == 1:
            return self._alone(records[0], failed)
        middle = len(records) // 2
        return self._records(records[:middle], None) and self._records(records[middle:], None)

    def _alone(self, record: LogRecord, error: Refusal) -> bool:
        if (
            isinstance(error, DecisionFailed)
            and self.count_failure(record, error) < self.max_decision_failures
        ):
            self.result.held[record.partition] = error
            return False
        self.dead_letter(record, error)
        self.result.dead_lettered.append((record, error))
        return True

    def _try(self, records: Sequence[LogRecord]) -> Refusal | None:
        try:
            self.apply(records)
        except (StoreRejected, DecisionFailed) as exc:
            return exc
        return None
