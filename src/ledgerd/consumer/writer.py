"""Writing a decided batch: one store transaction, fenced by each partition's epoch."""

from __future__ import annotations

from collections.abc import Sequence

from ledgerd.consumer.columns import ColumnDecision
from ledgerd.consumer.decide import BatchDecision
from ledgerd.store.base import BatchCommit, DeadLettered, PartitionClaim, Store
from ledgerd.support import failpoints


class BatchWriter:
    """Commits balances, journal, rejections and next offsets of a batch together."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def commit(
        self,
        positions: Sequence[PartitionClaim],
        decision: BatchDecision | ColumnDecision,
        applied_at_ms: int,
        records: int,
        follow_up_group: str | None = None,
        *,
        cleared_failures: Sequence[int] = (),
    ) -> None:
        """Write the batch in one transaction.

        ``cleared_failures``: partitions with a decision failure counted at a record this
        batch may move past (the count is forgotten once the offset is past it).

        Raises:
            Fenced: a partition's epoch moved on; nothing was written.
            StoreRejected: the database refuses some of the batch's values; nothing written.
        """
        batch = BatchCommit(
            positions=positions,
            journal=decision.journal,
            rejections=decision.rejections,
            applied_at_ms=applied_at_ms,
            follow_ups=decision.follow_ups,
            follow_up_group=follow_up_group,
            cleared_failures=cleared_failures,
            rows=decision.rows if isinstance(decision, ColumnDecision) else None,
            holds=list(decision.holds.values()) if isinstance(decision, BatchDecision) else (),
        )
        # Fault drills wait for this note to pause or kill the process mid-batch.
        failpoints.hit(
            "consumer.before_commit", note="holding batch before commit", records=records
        )
        self._store.commit_batch(batch)
        failpoints.hit("consumer.after_commit", records=records)

    def skip_dead_lettered(
        self,
        position: PartitionClaim,
        letters: Sequence[DeadLettered],
        applied_at_ms: int,
        *,
        cleared_failures: Sequence[int] = (),
    ) -> None:
        """Move a partition past a record already in the DLQ, recording its requests as
        dead-lettered, in one transaction.

        Raises:
            Fenced: the partition's epoch moved on; nothing was written.
            StoreRejected: the database refuses the dead-letter rows; nothing written.
        """
        self._store.commit_batch(
            BatchCommit(
                positions=[position],
                journal=[],
                rejections=[],
                applied_at_ms=applied_at_ms,
                dead_letters=letters,
                cleared_failures=cleared_failures,
            )
        )
