"""Writing a decided batch: one store transaction, fenced by each partition's epoch."""

from __future__ import annotations

from collections.abc import Sequence

from ledgerd.consumer.decide import BatchDecision
from ledgerd.store.base import BatchCommit, PartitionClaim, Store
from ledgerd.support import failpoints


class BatchWriter:
    """Commits balances, journal, rejections and next offsets of a batch together."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def commit(
        self,
        positions: Sequence[PartitionClaim],
        decision: BatchDecision,
        applied_at_ms: int,
        records: int,
        follow_up_group: str | None = None,
    ) -> None:
        """Write the batch in one transaction.

        Raises:
            Fenced: a partition's epoch moved on; nothing was written.
        """
        batch = BatchCommit(
            positions=positions,
            balances=list(decision.balances.values()),
            journal=decision.journal,
            rejections=decision.rejections,
            applied_at_ms=applied_at_ms,
            follow_ups=decision.follow_ups,
            follow_up_group=follow_up_group,
        )
        # Fault drills wait for this note to pause or kill the process mid-batch.
        failpoints.hit(
            "consumer.before_commit", note="holding batch before commit", records=records
        )
        self._store.commit_batch(batch)
        failpoints.hit("consumer.after_commit", records=records)
