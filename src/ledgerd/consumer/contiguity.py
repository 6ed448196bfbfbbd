"""Never skip a log record: the checks between a partition's stored position and its log.

Pure state, no I/O. At a claim, the store's position must lie in what the log holds
and belong to the same incarnation of the topic (``claim_gap``); afterwards every
record read must be the next offset of its partition (``Contiguity``). Anything
else is a gap: the partition stops, with the reason, and nothing past it is applied.
A Kafka topic holds consecutive offsets (ledgerd's producers are not transactional
and its topics are not compacted), so a higher offset means records are missing; a
lower one was delivered again (a poll spanning a rebalance) and is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledgerd.log.base import LogRecord, PartitionIdentity
from ledgerd.store.base import PartitionClaim


def claim_gap(claim: PartitionClaim, identity: PartitionIdentity) -> str | None:
    """Why the log cannot resume ``claim`` without skipping or repeating, or None."""
    if claim.topic_id and claim.topic_id != identity.topic_id:
        return (
            f"the topic was recreated: its id is {identity.topic_id}, the stored position"
            f" {claim.next_offset} was read in topic id {claim.topic_id}"
        )
    if claim.next_offset < identity.start_offset:
        return (
            f"records {claim.next_offset}..{identity.start_offset - 1} were removed from the"
            " log (retention or DeleteRecords) before they were applied"
        )
    if claim.next_offset > identity.end_offset:
        return (
            f"the log ends at offset {identity.end_offset}, before the stored position"
            f" {claim.next_offset}: it lost records it had (a recreated or restored topic)"
        )
    return None


def read_gap(expected: int, found: int) -> str:
    """The reason a partition stops when ``found`` (beyond it) was read where ``expected``
    was due."""
    return (
        f"read offset {found} where {expected} was due: records {expected}..{found - 1}"
        " are missing from the log"
    )


class Contiguity:
    """The offset each readable partition must deliver next, and why the others stopped."""

    def __init__(self) -> None:
        self._expected: dict[int, int] = {}
        self._stopped: dict[int, str] = {}

    @property
    def stopped(self) -> Mapping[int, str]:
        """Stopped partitions, with the reason."""
        return self._stopped

    def expect(self, partition: int, offset: int) -> None:
        """The partition is read from ``offset`` next (a claim, a seek); not if stopped."""
        if partition not in self._stopped:
            self._expected[partition] = offset

    def stop(self, partition: int, reason: str) -> bool:
        """Stop reading the partition; False if it already was."""
        self._expected.pop(partition, None)
        if partition in self._stopped:
            return False
        self._stopped[partition] = reason
        return True

    def forget(self, partition: int) -> None:
        """The partition is no longer ours: no expectation, not stopped."""
        self._expected.pop(partition, None)
        self._stopped.pop(partition, None)

    def admit(self, records: Sequence[LogRecord]) -> tuple[list[LogRecord], dict[int, str]]:
        """The records that continue their partition without a gap, in order, and the
        partitions with a gap (with the reason), for the caller to ``stop``. Records of
        partitions not expected (not owned, or stopped) are dropped."""
        expected = self._expected
        kept: list[LogRecord] = []
        stopped: dict[int, str] = {}
        for record in records:
            partition = record.partition
            due = expected.get(partition)
            if due is None:
                continue
            offset = record.offset
            if offset < due:
                # Delivered again: a poll that spans a rebalance returns records fetched
                # under the old assignment and again from the new claim. (A log that
                # started over is told at the claim: its topic id, or its end before the
                # stored position.)
                continue
            if offset > due:
                # Nothing more of it is admitted; the caller stops it (``stop``).
                del expected[partition]
                stopped[partition] = read_gap(due, offset)
                continue
            expected[partition] = offset + 1
            kept.append(record)
        return kept, stopped
