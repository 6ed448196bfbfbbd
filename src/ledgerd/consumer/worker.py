"""The batch consumer: one writer per partition, one store transaction per batch.

For each batch it decodes the messages, reads their outbox rows (to skip
requests that already have an outcome), applies them to in-memory balances
and commits balances, journal, outcomes and each partition's next offset
together; the offset update is a compare-and-set on the epoch this consumer
got when it claimed the partition, so a consumer that lost the partition
cannot commit. Only after the commit does the in-memory state move on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from ledgerd import metrics
from ledgerd.cache.base import BalanceSink
from ledgerd.consumer.decide import decide_batch
from ledgerd.consumer.outcomes import OutcomeHub
from ledgerd.domain.model import Account, Balance, ChangeRequest
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import CacheUnavailable, Fenced, LedgerError, LogUnavailable, PoisonMessage
from ledgerd.log.base import EventLog, LogRecord
from ledgerd.log.codec import decode_change
from ledgerd.store.base import BatchCommit, PartitionClaim, Store
from ledgerd.support import failpoints
from ledgerd.support.supervisor import Lifeline

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    topic: str = "balance-changes"
    dlq_topic: str = "balance-changes-dlq"
    group_id: str = "balance-consumer-group"
    batch_max_messages: int = 200
    batch_delay_s: float = 0.1
    poll_timeout_s: float = 1.0
    max_retries: int = 3
    retry_base_s: float = 0.1
    pause_s: float = 5.0
    max_accounts_in_memory: int = 1_000_000  # over all owned partitions


@dataclass(frozen=True, slots=True)
class _Poison:
    record: LogRecord
    error: str


class BatchConsumer:
    """Applies the event log's changes to the store, on its own thread."""

    def __init__(
        self,
        store: Store,
        event_log: EventLog,
        cache: BalanceSink | None,
        outcomes: OutcomeHub | None,
        config: ConsumerConfig,
    ) -> None:
        self._store = store
        self._log = event_log
        self._cache = cache
        self._outcomes = outcomes
        self._config = config
        self._consumer = event_log.consumer(config.group_id)
        self._dlq = event_log.producer()
        self._claims: dict[int, PartitionClaim] = {}
        self._balances: dict[int, dict[Account, Balance]] = {}
        self._paused_until: dict[int, float] = {}
        self._subscribed = False
        self._next_lag_report = 0.0
        self._lifeline: Lifeline | None = None

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        """Leave the group (after the loop returned); idempotent."""
        self._consumer.close()
        self._dlq.close()

    @property
    def paused_partitions(self) -> list[int]:
        return sorted(self._paused_until)

    @property
    def owned_partitions(self) -> list[int]:
        return sorted(self._claims)

    def lookup(self, account: Account) -> Balance | None:
        """The committed balance if this consumer owns the account's partition and holds it."""
        partition = partition_for_user(account.user_id, self._log.partition_count)
        state = self._balances.get(partition)
        return None if state is None else state.get(account)

    def run_until_idle(self, max_batches: int = 1_000_000) -> int:
        """Apply batches until the log has nothing new (burst mode); returns messages seen."""
        seen = 0
        for _ in range(max_batches):
            count = self.run_once(timeout_s=0.0)
            seen += count
            if count == 0:
                break
        return seen

    def run(self, lifeline: Lifeline) -> None:
        """The loop, for the supervisor: apply batches until asked to stop."""
        self._recover()
        self._lifeline = lifeline
        while not lifeline.stopping:
            lifeline.beat()
            failpoints.hit("consumer.loop")
            try:
                self.run_once(self._config.poll_timeout_s)
            except LedgerError as exc:
                log.error("consumer batch failed", error=str(exc), retriable=exc.retriable)
                lifeline.wait(self._config.retry_base_s)

    def _recover(self) -> None:
        """After a crash the batch in hand may or may not be committed: forget memory and
        read every owned partition again from its stored position (the CAS and the journal
        keep anything from applying twice)."""
        for partition, claim in list(self._claims.items()):
            self._balances[partition] = {}
            self._consumer.seek(partition, claim.next_offset)

    def _sleep(self, seconds: float) -> None:
        if self._lifeline is not None:
            self._lifeline.wait(seconds)
        else:
            time.sleep(seconds)

    # -- one batch ------------------------------------------------------------
    def run_once(self, timeout_s: float) -> int:
        """Poll one batch and apply it; returns the number of messages polled."""
        self._ensure_subscribed()
        self._resume_due()
        records = self._poll(timeout_s)
        self._report_lag()
        if not records:
            return 0
        started = time.perf_counter()
        for attempt in range(self._config.max_retries + 1):
            try:
                self._apply(records)
                break
            except Fenced as exc:
                self._fence(records, exc)
                break
            except LedgerError as exc:
                if not exc.retriable:
                    raise
                metrics.CONSUMER_RETRIES.inc()
                # The commit may or may not have happened: forget what memory
                # holds for these partitions and decide again from the store.
                for partition in {r.partition for r in records}:
                    self._balances[partition] = {}
                if attempt == self._config.max_retries:
                    self._pause(records, exc)
                    break
                log.warning("consumer batch retry", attempt=attempt + 1, error=str(exc))
                self._sleep(self._config.retry_base_s * 2**attempt)
        metrics.CONSUMER_BATCH_SIZE.observe(len(records))
        metrics.CONSUMER_APPLY_LATENCY.observe(time.perf_counter() - started)
        return len(records)

    def _poll(self, timeout_s: float) -> list[LogRecord]:
        """Up to batch_max_messages, topping up for batch_delay_s after the first."""
        limit = self._config.batch_max_messages
        records = list(self._consumer.poll_batch(limit, timeout_s))
        if records and timeout_s > 0:
            deadline = time.monotonic() + self._config.batch_delay_s
            while len(records) < limit and (remaining := deadline - time.monotonic()) > 0:
                more = self._consumer.poll_batch(limit - len(records), remaining)
                if not more:
                    break
                records += more
        # Records of partitions no longer owned (revoked or fenced) are not ours to apply.
        return [r for r in records if r.partition in self._claims]

    def _apply(self, records: Sequence[LogRecord]) -> None:
        changes: list[tuple[LogRecord, ChangeRequest]] = []
        poison: list[_Poison] = []
        for record in records:
            try:
                changes.append((record, decode_change(record.value)))
            except PoisonMessage as exc:
                poison.append(_Poison(record, str(exc)))
        requests = [change for _, change in changes]
        stored = self._store.get_requests({c.request_id for c in requests})
        balances, partition_of = self._balances_for(changes)
        now_ms = int(time.time() * 1000)
        decision = decide_batch(requests, stored, balances, now_ms)
        if decision.unknown:
            unknown_ids = {c.request_id for c in decision.unknown}
            poison += [
                _Poison(record, "no outbox request matches this message")
                for record, change in changes
                if change.request_id in unknown_ids
            ]
        if poison:
            self._send_to_dlq(poison)
        positions = self._positions(records)
        failpoints.hit(
            "consumer.before_commit", note="holding batch before commit", records=len(records)
        )
        self._store.commit_batch(
            BatchCommit(
                positions=positions,
                balances=list(decision.balances.values()),
                journal=decision.journal,
                outcomes=decision.outcomes,
                applied_at_ms=now_ms,
            )
        )
        failpoints.hit("consumer.after_commit", records=len(records))
        # Committed: memory, cache, waiters and the log's own offsets follow.
        for account, balance in decision.balances.items():
            self._balances[partition_of[account]][account] = balance
        self._bound_memory({partition_of[a] for a in decision.balances})
        self._claims.update({p.partition: p for p in positions})
        # Counted before waiters wake, so a caller answered APPLIED finds it in the metrics.
        metrics.CHANGES.labels(outcome="applied").inc(decision.applied)
        metrics.CHANGES.labels(outcome="rejected").inc(decision.rejected)
        metrics.DUPLICATE_MESSAGES.inc(decision.duplicates)
        self._after_commit(decision.balances.values(), [o.request_id for o in decision.outcomes])
        self._consumer.commit({p.partition: p.next_offset for p in positions})

    def _bound_memory(self, partitions: set[int]) -> None:
        """Forget the oldest-loaded accounts past the cap; they reload from the store."""
        cap = max(1, self._config.max_accounts_in_memory // max(1, len(self._claims)))
        for partition in partitions:
            state = self._balances[partition]
            while len(state) > cap:
                del state[next(iter(state))]

    def _balances_for(
        self, changes: Sequence[tuple[LogRecord, ChangeRequest]]
    ) -> tuple[dict[Account, Balance], dict[Account, int]]:
        """Balances of every touched account (memory, else the store, else zeros),
        and the partition each account belongs to."""
        view: dict[Account, Balance] = {}
        partition_of: dict[Account, int] = {}
        missing: set[Account] = set()
        for record, change in changes:
            account = change.account
            partition_of[account] = record.partition
            known = self._balances.setdefault(record.partition, {}).get(account)
            if known is not None:
                view[account] = known
            else:
                missing.add(account)
        if missing:
            loaded = self._store.load_balances(missing)
            for account in missing:
                view[account] = loaded.get(account) or Balance(account.user_id, account.currency)
        return view, partition_of

    def _positions(self, records: Sequence[LogRecord]) -> list[PartitionClaim]:
        last: dict[int, int] = {}
        for record in records:
            last[record.partition] = max(last.get(record.partition, -1), record.offset)
        return [
            PartitionClaim(self._config.topic, partition, self._claims[partition].epoch, offset + 1)
            for partition, offset in sorted(last.items())
        ]

    def _after_commit(self, balances: Iterable[Balance], request_ids: list[str]) -> None:
        if self._cache is not None:
            try:
                self._cache.put_many(balances)
            except CacheUnavailable as exc:
                # The cache catches up from later batches and its full sync.
                log.warning("cache update failed", error=str(exc))
        if self._outcomes is not None:
            self._outcomes.publish(request_ids)

    def _send_to_dlq(self, poison: Sequence[_Poison]) -> None:
        errors: list[Exception] = []

        def on_delivery(error: Exception | None) -> None:
            if error is not None:
                errors.append(error)

        for item in poison:
            record = item.record
            self._dlq.publish(
                self._config.dlq_topic,
                record.key,
                record.value,
                headers=[
                    ("error", item.error.encode()),
                    ("source-topic", record.topic.encode()),
                    ("source-partition", str(record.partition).encode()),
                    ("source-offset", str(record.offset).encode()),
                ],
                on_delivery=on_delivery,
            )
        remaining = self._dlq.flush(30.0)
        if remaining or errors:
            raise LogUnavailable(f"could not write {len(poison)} messages to the DLQ")
        metrics.DLQ_MESSAGES.inc(len(poison))
        log.warning("messages sent to the DLQ", count=len(poison), first_error=poison[0].error)

    # -- ownership ------------------------------------------------------------
    def _ensure_subscribed(self) -> None:
        if not self._subscribed:
            self._consumer.subscribe(self._config.topic, self._on_assign, self._on_revoke)
            self._subscribed = True

    def _on_assign(self, partitions: Sequence[int]) -> Mapping[int, int]:
        starts: dict[int, int] = {}
        for partition in partitions:
            claim = self._store.claim_partition(self._config.topic, partition)
            self._claims[partition] = claim
            self._balances[partition] = {}
            starts[partition] = claim.next_offset
        log.info("partitions assigned", partitions=list(partitions), starts=starts)
        return starts

    def _on_revoke(self, partitions: Sequence[int]) -> None:
        for partition in partitions:
            self._claims.pop(partition, None)
            self._balances.pop(partition, None)
            self._paused_until.pop(partition, None)
        log.info("partitions revoked", partitions=list(partitions))

    def _fence(self, records: Sequence[LogRecord], exc: Fenced) -> None:
        """Another consumer owns a partition now: drop it until it is assigned again."""
        metrics.FENCED_BATCHES.inc()
        lost = (
            [exc.partition] if exc.partition is not None else sorted({r.partition for r in records})
        )
        log.warning("batch fenced", partitions=lost, error=str(exc))
        for partition in lost:
            self._claims.pop(partition, None)
            self._balances.pop(partition, None)
        # Other partitions of the batch were not committed either: read them again.
        for partition in {r.partition for r in records} - set(lost):
            self._consumer.seek(partition, self._next_offset(partition))

    def _next_offset(self, partition: int) -> int:
        return self._claims[partition].next_offset

    def _pause(self, records: Sequence[LogRecord], exc: LedgerError) -> None:
        """Stop reading partitions we cannot commit; never skip their messages."""
        partitions = sorted({r.partition for r in records})
        log.error("consumer pausing partitions", partitions=partitions, error=str(exc))
        until = time.monotonic() + self._config.pause_s
        for partition in partitions:
            self._paused_until[partition] = until
            self._consumer.seek(partition, self._next_offset(partition))
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
        self._next_lag_report = now + 1.0
        try:
            ends = self._log.end_offsets(self._config.topic)
        except LedgerError:
            return
        for partition, claim in self._claims.items():
            lag = max(ends.get(partition, 0) - claim.next_offset, 0)
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(lag)
