"""What the consumer reads: batch assembly from the log, and partition ownership.

A partition is ours from its assignment, when the store hands out a claim
whose epoch fences every later commit, until it is revoked or a commit is
fenced. The log position of an owned partition only ever moves past records
that were committed, or back to the store's position; records are never
skipped: failing partitions are paused and re-read, not passed over.

Nor does the log skip them for us (``contiguity``): at each claim the store's
position must be inside what the log holds, in the same incarnation of the
topic, and each record read must be the next offset of its partition. A gap
stops that partition alone (the others go on), with an error logged, the
``ledgerd_partition_gap`` gauge set and health showing it, until an operator
repairs it (docs/operations.md, "Retention and gaps") and it is claimed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import structlog

from ledgerd import metrics
from ledgerd.consumer.config import ConsumerConfig
from ledgerd.consumer.contiguity import Contiguity, claim_gap
from ledgerd.consumer.stamps import BatchStamps
from ledgerd.errors import Fenced, LedgerError
from ledgerd.log.base import EventLog, LogRecord
from ledgerd.store.base import PartitionClaim, Store

log = structlog.get_logger(__name__)

# Told which partitions changed hands (memory follows ownership).
PartitionsChanged = Callable[[Sequence[int]], None]

_LAG_REPORT_INTERVAL_S = 1.0
# The log's copy of the positions is advisory (lag for Kafka's tools; the store's is the
# real one): sent at most this often, not after every batch (a broker request each).
_LOG_COMMIT_INTERVAL_S = 1.0


class Intake:
    """Polls batches of owned partitions and keeps their claims, pauses and lag."""

    def __init__(
        self,
        store: Store,
        event_log: EventLog,
        config: ConsumerConfig,
        *,
        on_gained: PartitionsChanged,
        on_lost: PartitionsChanged,
    ) -> None:
        self._store = store
        # What the batches of owned partitions are stamped with: no earlier than any
        # claim's newest recorded stamp.
        self.stamps = BatchStamps()
        self._log = event_log
        self._config = config
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._consumer = event_log.consumer(config.group_id)
        self._claims: dict[int, PartitionClaim] = {}
        self._paused_until: dict[int, float] = {}
        self._contiguity = Contiguity()
        # Stopped at their claim: owned, but never handed to the log to read.
        self._unread: set[int] = set()
        self._subscribed = False
        self._next_lag_report = 0.0
        self._lag = 0
        # Store-committed positions the log has not been told yet (advisory copy).
        self._uncommitted_in_log: dict[int, int] = {}
        self._next_log_commit = 0.0

    @property
    def owned(self) -> list[int]:
        return sorted(self._claims)

    @property
    def paused(self) -> list[int]:
        return sorted(self._paused_until)

    @property
    def stopped(self) -> Mapping[int, str]:
        """Partitions stopped by a gap in the log, with the reason."""
        return dict(self._contiguity.stopped)

    @property
    def lag(self) -> int:
        """Messages of owned partitions not yet applied, as of the last lag report."""
        return self._lag

    def close(self) -> None:
        """Leave the group (revoking every partition); idempotent."""
        self._tell_log(force=True)
        self._consumer.close()

    # -- reading --------------------------------------------------------------
    def poll(self, timeout_s: float) -> list[LogRecord]:
        """Up to batch_max_messages of owned partitions, topping up for batch_delay_s
        after the first."""
        if not self._subscribed:
            self._consumer.subscribe(self._config.topic, self._assigned, self._revoked)
            self._subscribed = True
        self._resume_due()
        limit = self._config.batch_max_messages
        records = list(self._consumer.poll_batch(limit, timeout_s))
        if records and timeout_s > 0:
            deadline = time.monotonic() + self._config.batch_delay_s
            while len(records) < limit and (remaining := deadline - time.monotonic()) > 0:
                more = self._consumer.poll_batch(limit - len(records), remaining)
                if not more:
                    break
                records += more
        self._report_lag()
        self._tell_log()  # an idle consumer's last positions too
        for partition, offset in self._consumer.gaps().items():
            if partition in self._claims:
                self._stop(
                    partition, f"offset {offset} is not in the log (removed, or past its end)"
                )
        # Only records that continue their partition: of partitions no longer owned
        # (revoked or fenced), or stopped, none is ours to apply.
        kept, stopped = self._contiguity.admit(records)
        for partition, reason in stopped.items():
            self._stop(partition, reason)
        return kept

    def positions(self, records: Sequence[LogRecord]) -> list[PartitionClaim]:
        """Each partition's claim moved past the last of its records (what a commit writes)."""
        last: dict[int, int] = {}
        for record in records:
            last[record.partition] = max(last.get(record.partition, -1), record.offset)
        return [
            replace(self._claims[partition], next_offset=offset + 1)
            for partition, offset in sorted(last.items())
        ]

    def committed(self, positions: Sequence[PartitionClaim]) -> None:
        """The store committed these positions: remember them, and tell the log (advisory)."""
        self._claims.update({p.partition: p for p in positions})
        self._uncommitted_in_log.update({p.partition: p.next_offset for p in positions})
        self._tell_log()

    def _tell_log(self, *, force: bool = False) -> None:
        """Commit the positions to the log if due (or ``force``); advisory."""
        now = time.monotonic()
        if self._uncommitted_in_log and (force or now >= self._next_log_commit):
            offsets, self._uncommitted_in_log = self._uncommitted_in_log, {}
            self._next_log_commit = now + _LOG_COMMIT_INTERVAL_S
            self._consumer.commit(offsets)

    def rewind(self) -> list[int]:
        """Read every owned partition again from the store's position; returns them.

        For when a batch was in hand and its commit may or may not have happened:
        the store knows. Re-reading a committed record is harmless (its request has
        an outcome), skipping one is not.
        """
        owned = self.owned
        if not owned:
            return owned
        stored = self._store.get_positions(self._config.topic)
        for partition in owned:
            claim = self._claims[partition]
            claim = replace(claim, next_offset=stored.get(partition, claim.next_offset))
            self._claims[partition] = claim
            self._seek(partition, claim.next_offset)
        log.info("consumer rewound to the store's positions", partitions=owned)
        return owned

    # -- ownership ------------------------------------------------------------
    def _assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        """Claim each partition and check that the log holds its stored position; the
        start offsets of those that pass (the others stay owned, stopped, unread)."""
        topic = self._config.topic
        starts: dict[int, int] = {}
        for partition in partitions:
            # Read before the claim: if the log does not answer, nothing is claimed yet.
            identity = self._log.partition_identity(topic, partition)
            claim = self._store.claim_partition(topic, partition, identity.topic_id)
            self._claims[partition] = claim
            self.stamps.claimed(claim.stamped_at_ms)
            self._contiguity.forget(partition)
            self._unread.discard(partition)
            metrics.PARTITION_GAP.labels(partition=str(partition)).set(0)
            self._on_gained([partition])
            gap = claim_gap(claim, identity)
            if gap is not None:
                self._unread.add(partition)
                self._stop(partition, gap)
                continue
            starts[partition] = claim.next_offset
            self._contiguity.expect(partition, claim.next_offset)
        log.info("partitions assigned", partitions=list(partitions), starts=starts)
        return starts

    def _revoked(self, partitions: Sequence[int]) -> None:
        # Still ours inside the callback: the log hears their last positions.
        last = {
            p: self._uncommitted_in_log.pop(p) for p in partitions if p in self._uncommitted_in_log
        }
        if last:
            self._consumer.commit(last)
        for partition in partitions:
            self._claims.pop(partition, None)
            self._paused_until.pop(partition, None)
            self._forget(partition)
        self._on_lost(list(partitions))
        log.info("partitions revoked", partitions=list(partitions))

    def fence(
        self, records: Sequence[LogRecord], exc: Fenced, positions: Sequence[PartitionClaim]
    ) -> None:
        """A batch (decided under ``positions``' claims) was fenced: another consumer owns a
        partition now, so drop it until it is assigned again. Unless the newer claim is this
        consumer's own: the log assigned the partition again while the batch was committing,
        and that claim stands; the partition is read again from it."""
        metrics.FENCED_BATCHES.inc()
        in_batch = {r.partition for r in records}
        fenced = [exc.partition] if exc.partition is not None else sorted(in_batch)
        batch_epochs = {p.partition: p.epoch for p in positions}
        lost = [
            partition
            for partition in fenced
            if not self._claimed_since(partition, batch_epochs.get(partition))
        ]
        log.warning("batch fenced", partitions=fenced, lost=lost, error=str(exc))
        for partition in lost:
            self._claims.pop(partition, None)
            self._uncommitted_in_log.pop(partition, None)
            self._forget(partition)
        if lost:
            self._on_lost(lost)
        # The batch's other partitions (and those claimed again) were not committed either.
        for partition in in_batch - set(lost):
            self._seek(partition, self._claims[partition].next_offset)

    def _claimed_since(self, partition: int, batch_epoch: int | None) -> bool:
        claim = self._claims.get(partition)
        return claim is not None and batch_epoch is not None and claim.epoch > batch_epoch

    def pause(self, records: Sequence[LogRecord], exc: LedgerError) -> None:
        """Stop reading partitions we cannot commit; never skip their messages."""
        stopped = self._contiguity.stopped
        partitions = sorted({r.partition for r in records} - set(stopped))
        log.error("consumer pausing partitions", partitions=partitions, error=str(exc))
        until = time.monotonic() + self._config.pause_s
        for partition in partitions:
            self._paused_until[partition] = until
            self._seek(partition, self._claims[partition].next_offset)
        self._consumer.pause(partitions)
        metrics.CONSUMER_PAUSED_PARTITIONS.set(len(self._paused_until))

    def _resume_due(self) -> None:
        now = time.monotonic()
        due = [p for p, until in self._paused_until.items() if until <= now]
        if due:
            for partition in due:
                del self._paused_until[partition]
            self._consumer.resume(due)
            metrics.CONSUMER_PAUSED_PARTITIONS.set(len(self._paused_until))
            log.info("consumer resuming partitions", partitions=due)

    def _seek(self, partition: int, offset: int) -> None:
        """Read the partition from ``offset`` next (a stopped one stays stopped)."""
        if partition in self._contiguity.stopped:
            return
        self._consumer.seek(partition, offset)
        self._contiguity.expect(partition, offset)

    def _stop(self, partition: int, reason: str) -> None:
        """A gap: stop reading the partition, never skip past it; alert."""
        if not self._contiguity.stop(partition, reason):
            return
        self._paused_until.pop(partition, None)
        metrics.CONSUMER_PAUSED_PARTITIONS.set(len(self._paused_until))
        if partition not in self._unread:
            self._consumer.pause([partition])
        metrics.PARTITION_GAP.labels(partition=str(partition)).set(1)
        claim = self._claims.get(partition)
        log.error(
            "partition stopped: a gap in the log; nothing past it is applied",
            topic=self._config.topic,
            partition=partition,
            next_offset=None if claim is None else claim.next_offset,
            reason=reason,
        )

    def _forget(self, partition: int) -> None:
        """No longer ours: nothing expected of it, and its gap is its next owner's."""
        self._contiguity.forget(partition)
        self._unread.discard(partition)
        metrics.PARTITION_GAP.labels(partition=str(partition)).set(0)

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now < self._next_lag_report:
            return
        self._next_lag_report = now + _LAG_REPORT_INTERVAL_S
        try:
            ends = self._log.end_offsets(self._config.topic)
        except LedgerError:
            return
        total = 0
        for partition, claim in self._claims.items():
            lag = max(ends.get(partition, 0) - claim.next_offset, 0)
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(lag)
            total += lag
        self._lag = total
