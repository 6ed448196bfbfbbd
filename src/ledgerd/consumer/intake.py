"""What the consumer reads: batch assembly from the log, and partition ownership.

A partition is ours from its assignment, when the store hands out a claim
whose epoch fences every later commit, until it is revoked or a commit is
fenced. The log position of an owned partition only ever moves past records
that were committed, or back to the store's position; records are never
skipped: failing partitions are paused and re-read, not passed over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import structlog

from ledgerd import metrics
from ledgerd.consumer.config import ConsumerConfig
from ledgerd.errors import Fenced, LedgerError
from ledgerd.log.base import EventLog, LogRecord
from ledgerd.store.base import PartitionClaim, Store

log = structlog.get_logger(__name__)

# Told which partitions changed hands (memory follows ownership).
PartitionsChanged = Callable[[Sequence[int]], None]

_LAG_REPORT_INTERVAL_S = 1.0


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
        self._log = event_log
        self._config = config
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._consumer = event_log.consumer(config.group_id)
        self._claims: dict[int, PartitionClaim] = {}
        self._paused_until: dict[int, float] = {}
        self._subscribed = False
        self._next_lag_report = 0.0
        self._lag = 0

    @property
    def owned(self) -> list[int]:
        return sorted(self._claims)

    @property
    def paused(self) -> list[int]:
        return sorted(self._paused_until)

    @property
    def lag(self) -> int:
        """Messages of owned partitions not yet applied, as of the last lag report."""
        return self._lag

    def close(self) -> None:
        """Leave the group (revoking every partition); idempotent."""
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
        # Records of partitions no longer owned (revoked or fenced) are not ours to apply.
        return [r for r in records if r.partition in self._claims]

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
        self._consumer.commit({p.partition: p.next_offset for p in positions})

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
            self._consumer.seek(partition, claim.next_offset)
        log.info("consumer rewound to the store's positions", partitions=owned)
        return owned

    # -- ownership ------------------------------------------------------------
    def _assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        starts: dict[int, int] = {}
        for partition in partitions:
            claim = self._store.claim_partition(self._config.topic, partition)
            self._claims[partition] = claim
            self._on_gained([partition])
            starts[partition] = claim.next_offset
        log.info("partitions assigned", partitions=list(partitions), starts=starts)
        return starts

    def _revoked(self, partitions: Sequence[int]) -> None:
        for partition in partitions:
            self._claims.pop(partition, None)
            self._paused_until.pop(partition, None)
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
        if lost:
            self._on_lost(lost)
        # The batch's other partitions (and those claimed again) were not committed either.
        for partition in in_batch - set(lost):
            self._consumer.seek(partition, self._claims[partition].next_offset)

    def _claimed_since(self, partition: int, batch_epoch: int | None) -> bool:
        claim = self._claims.get(partition)
        return claim is not None and batch_epoch is not None and claim.epoch > batch_epoch

    def pause(self, records: Sequence[LogRecord], exc: LedgerError) -> None:
        """Stop reading partitions we cannot commit; never skip their messages."""
        partitions = sorted({r.partition for r in records})
        log.error("consumer pausing partitions", partitions=partitions, error=str(exc))
        until = time.monotonic() + self._config.pause_s
        for partition in partitions:
            self._paused_until[partition] = until
            self._consumer.seek(partition, self._claims[partition].next_offset)
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
