"""The batch consumer: one writer per partition, one store transaction per batch.

A round polls a batch (``intake``), decodes it and sorts out which messages it
may apply as they are (``provenance``: signed by the outbox and published for the
first time, recently), reads the outcome of the doubtful ones only, decides the
batch against in-memory balances (``decide``, pure), dead-letters poison
(``dead_letters``), commits balances, journal, rejections and each partition's
next offset together (``writer``; the offset update is a compare-and-set on the
claim's epoch, so a consumer that lost a partition cannot commit), and only then
tells memory, caches and waiters (``publish``). A batch made only of signed client
changes, nearly every batch, is verified, decoded, decided and written as columns
of plain values instead (``columns``), with the same results.

A record the store refuses every time (``StoreRejected``), or whose decision
raises (``DecisionFailed``, counted in the store, dead-lettered after
``max_decision_failures``), costs its partition one DLQ entry, not the pipeline:
the failed batch is applied again in parts to find it (``isolate``), the rest of
the batch commits, and healthy partitions are never paused for it.

``run`` is the loop a supervisor owns. When anything escapes a round, the batch
in hand may or may not have been committed, so the next round first rewinds
every owned partition to the store's position with its memory emptied: nothing
is skipped, and the store's offsets say exactly which records were committed.
A commit that failed may still have happened (a connection lost at COMMIT): the
retry reads the outcome of every request of the batch.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from ledgerd import metrics
from ledgerd.cache.base import BalanceSink
from ledgerd.consumer.columns import (
    ColumnBatch,
    ColumnDecision,
    accounts_of,
    decide_columns,
    sort_columns,
)
from ledgerd.consumer.config import ConsumerConfig
from ledgerd.consumer.dead_letters import DECISION_FAILED, STORE_REJECTED, DeadLetters, Poison
from ledgerd.consumer.decide import BatchDecision, decide_batch
from ledgerd.consumer.feed import CacheFeed
from ledgerd.consumer.intake import Intake
from ledgerd.consumer.isolate import Isolation, Refusal
from ledgerd.consumer.memory import BalanceMemory
from ledgerd.consumer.provenance import SortedBatch, settle_checks, sort_batch
from ledgerd.consumer.publish import CommitPublisher, OnCommitted
from ledgerd.consumer.writer import BatchWriter
from ledgerd.domain.holds import Hold
from ledgerd.domain.model import LEGS_PER_MESSAGE, Account, Balance, ChangeRequest, ChangeType
from ledgerd.domain.partitioning import partition_for_user
from ledgerd.errors import DecisionFailed, Fenced, LedgerError, StoreRejected
from ledgerd.log.base import EventLog, LogRecord
from ledgerd.log.signing import MessageSigner
from ledgerd.outcomes import OutcomeHub
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.store.base import DeadLettered, PartitionClaim, Store
from ledgerd.support import failpoints
from ledgerd.support.threadnames import name_os_thread

__all__ = ["BatchConsumer", "ConsumerConfig"]

log = structlog.get_logger(__name__)

# Hands a transfer's next legs, just committed to the outbox as one publish group, to
# this process's relay: (requests, commit time in Unix ms, publish group).
SendOn = Callable[[Sequence[ChangeRequest], int, str], None]


@dataclass(slots=True)
class _Decided:
    """A decided batch on its way to the store (``commit`` runs on the commit thread)."""

    records: Sequence[LogRecord]
    decision: BatchDecision | ColumnDecision
    partition_of: dict[Account, int]
    positions: list[PartitionClaim]
    applied_at_ms: int
    started: float
    follow_up_group: str | None = None
    commit: Future[None] | None = None


class BatchConsumer:
    """Applies the event log's changes to the store; ``run`` is its supervised loop."""

    def __init__(
        self,
        store: Store,
        event_log: EventLog,
        cache: BalanceSink | None,
        outcomes: OutcomeHub | None,
        config: ConsumerConfig,
        *,
        signer: MessageSigner,
        send_on: SendOn | None = None,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._store = store
        self._send_on = send_on
        # Publish groups of follow-ups: unique per consumer start, then counted.
        self._group_prefix = "f" + secrets.token_hex(8)
        self._group_numbers = itertools.count(1)
        self._signer = signer
        self._partition_count = event_log.partition_count
        self._config = config
        self._memory = BalanceMemory(config.max_accounts_in_memory)
        self._intake = Intake(
            store, event_log, config, on_gained=self._gained, on_lost=self._memory.drop
        )
        # Partitions whose last batches may have committed unpublished (``_republish_tails``).
        self._republish_due: set[int] = set()
        self._writer = BatchWriter(store)
        self._dead_letters = DeadLetters(event_log.producer(), config.dlq_topic)
        feed: CacheFeed | None = None
        if config.feed_topic is not None:
            event_log.ensure_topics([config.feed_topic])
            feed = CacheFeed(event_log.producer(), config.feed_topic)
        self._publisher = CommitPublisher(cache, self._memory, feed, outcomes, on_committed)
        self._lifeline: Lifeline | None = None
        # One commit at a time, on its own thread, so the next batch is read meanwhile.
        self._committer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="consumer-commit", initializer=name_os_thread
        )
        self._in_flight: _Decided | None = None
        # Partition -> the offset at which a decision failure is counted in the store: the
        # commit that moves past it forgets the count. Read again at every rewind.
        self._failing: dict[int, int] = {}
        self._rewind_due = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------
    def run(self, lifeline: Lifeline) -> None:
        """Apply batches until ``lifeline.stopping``.

        Retriable errors are logged and retried here; anything else reaches the
        supervisor, which calls ``run`` again (the first round then rewinds).
        """
        self._lifeline = lifeline
        # Called again after a crash: whatever was in hand is read again from the store's position.
        self._rewind_due = True
        while not lifeline.stopping:
            lifeline.beat()
            failpoints.hit("consumer.loop")
            try:
                self.run_once(self._config.poll_timeout_s, overlap=True)
            except LedgerError as exc:
                if not exc.retriable:
                    raise
                log.error("consumer batch failed", error=str(exc), retriable=exc.retriable)
                lifeline.wait(self._config.retry_base_s)
        # Asked to stop: the batch still committing is finished and published.
        self.drain()

    def close(self) -> None:
        """Leave the group and close the producers; idempotent. Call once ``run`` returned."""
        if self._closed:
            return
        self._closed = True
        self._finish_abandoned()
        self._committer.shutdown(wait=True)
        self._intake.close()
        self._dead_letters.close()
        self._publisher.close()

    def has_work(self) -> bool:
        """Whether owned partitions had unapplied messages at the last look (silence is a stall)."""
        return self._intake.lag > 0

    @property
    def paused_partitions(self) -> list[int]:
        return self._intake.paused

    @property
    def owned_partitions(self) -> list[int]:
        return self._intake.owned

    @property
    def stopped_partitions(self) -> Mapping[int, str]:
        """Partitions stopped by a gap in the log (nothing skipped), with the reason."""
        return self._intake.stopped

    def lookup(self, account: Account) -> Balance | None:
        """The committed balance if this consumer owns the account's partition and holds it."""
        return self._memory.get(partition_for_user(account.user_id, self._partition_count), account)

    def run_until_idle(self, max_batches: int = 1_000_000) -> int:
        """Apply batches until the log has nothing new (burst mode); returns messages seen."""
        seen = 0
        for _ in range(max_batches):
            count = self.run_once(timeout_s=0.0, overlap=True)
            seen += count
            if count == 0:
                break
        self.drain()
        return seen

    def drain(self) -> None:
        """Finish the commit still in flight, if any (publish it, or retry it)."""
        if self._in_flight is not None:
            try:
                self._finish(self._in_flight)
            except BaseException:
                self._rewind_due = True
                raise
        self._publisher.poll()  # hands the last batch's cache feed messages to the log

    # -- one batch ------------------------------------------------------------
    def run_once(self, timeout_s: float, *, overlap: bool = False) -> int:
        """Poll one batch and apply it; returns the number of messages polled.

        With ``overlap``, the batch's commit is left running on the commit thread
        while the next round polls, decodes and checks the next batch; the next
        round (or one without ``overlap``) finishes it.
        """
        if self._rewind_due:
            self._finish_abandoned()
            self._gained(self._intake.rewind())
            self._failing = {
                f.partition: f.offset for f in self._store.record_failures(self._config.topic)
            }
            self._rewind_due = False
        try:
            count = self._round(timeout_s if self._in_flight is None else 0.0)
            if not overlap and self._in_flight is not None:
                self._finish(self._in_flight)
            return count
        except BaseException:
            # A batch may be in hand, committed or not: read it again next round.
            self._rewind_due = True
            raise

    def _round(self, timeout_s: float) -> int:
        self._publisher.poll()
        records = self._intake.poll(timeout_s)
        if self._republish_due:  # partitions just claimed (in the poll) or rewound
            self._republish_tails()
        in_flight = self._in_flight
        if in_flight is None:
            if records:
                self._begin(records, self._sort_first(records))
            return len(records)
        # While batch n commits on the commit thread, decode and verify batch n+1.
        sorted_next = self._sort_first(records) if records else None
        if not self._finish(in_flight):
            # Batch n did not commit as decided: n+1 was read against state that may
            # not be the store's. Read it again from the store's positions.
            if records:
                self._rewind_due = True
            return len(records)
        if records and sorted_next is not None:
            self._begin(records, sorted_next)
        return len(records)

    def _sort(self, records: Sequence[LogRecord], *, check_all: bool) -> SortedBatch:
        return sort_batch(
            records,
            self._signer,
            now_ms=int(time.time() * 1000),
            trust_window_ms=int(self._config.trust_window_s * 1000),
            check_all=check_all,
        )

    def _sort_first(self, records: Sequence[LogRecord]) -> SortedBatch | ColumnBatch:
        """A batch read for the first time: as columns if every message is a signed client
        change (``columns``), else by the general path."""
        columns = sort_columns(
            records,
            self._signer,
            now_ms=int(time.time() * 1000),
            trust_window_ms=int(self._config.trust_window_s * 1000),
        )
        return self._sort(records, check_all=False) if columns is None else columns

    def _decide(self, records: Sequence[LogRecord], batch: SortedBatch | ColumnBatch) -> _Decided:
        """Read the doubtful messages' outcomes, decide the batch, dead-letter poison."""
        if isinstance(batch, ColumnBatch):
            return self._decide_columns(records, batch)
        now_ms = self._intake.stamps.next()
        already_final = settle_checks(batch, self._store)
        metrics.CONSUMER_CHECKED_MESSAGES.inc(len(batch.check))
        requests = [change for _, change in batch.changes]
        partition_of = {change.account: record.partition for record, change in batch.changes}
        # Each journal entry's place in its partition's event stream (``ledgerd.events``).
        event_positions = [
            (record.partition, record.offset * LEGS_PER_MESSAGE + change.atomic_leg + 1)
            for record, change in batch.changes
        ]
        balances = self._memory.view(partition_of, self._store)
        holds = self._holds_named(requests, partition_of)
        try:
            decision = decide_batch(
                requests, already_final, balances, now_ms, event_positions, holds=holds
            )
        except LedgerError:
            raise
        except Exception as exc:  # a bug, or a message no rule expected: find the record
            raise DecisionFailed(f"deciding raised {type(exc).__name__}: {exc}") from exc
        if batch.poison:
            self._dead_letters.send(batch.poison)
        for stuck in decision.stuck_returns:
            log.error(
                "transfer return refused: the source's balance would overflow; the amount"
                " stays in flight (ledgerd audit reports it)",
                transfer_id=stuck.transfer_id, user_id=stuck.user_id, currency=stuck.currency,
            )  # fmt: skip
        group = None
        if decision.follow_ups:
            group = f"{self._group_prefix}-{next(self._group_numbers)}"
        return _Decided(
            records, decision, partition_of, self._intake.positions(records), now_ms,
            time.perf_counter(), group,
        )  # fmt: skip

    def _holds_named(
        self, requests: Sequence[ChangeRequest], partition_of: Mapping[Account, int]
    ) -> Mapping[str, Hold]:
        """The committed holds the batch's captures, releases and expiries name: from memory,
        else from the store (one read per batch that misses any)."""
        wanted = {
            change.hold_id: (partition_of[change.account], change.user_id)
            for change in requests
            if change.hold_id and change.type is not ChangeType.HOLD
        }
        return self._memory.view_holds(wanted, self._store) if wanted else {}

    def _decide_columns(self, records: Sequence[LogRecord], batch: ColumnBatch) -> _Decided:
        """``_decide`` of a column batch (no poison, no transfer, nothing unsigned)."""
        now_ms = self._intake.stamps.next()
        already_final = set(self._store.decided_requests(batch.check)) if batch.check else set()
        metrics.CONSUMER_CHECKED_MESSAGES.inc(len(batch.check))
        accounts = accounts_of(batch)
        balances = self._memory.view_keys(accounts, self._store)
        try:
            decision = decide_columns(batch, already_final, balances, now_ms)
        except LedgerError:
            raise
        except Exception as exc:  # a bug: the general path finds the record
            raise DecisionFailed(f"deciding raised {type(exc).__name__}: {exc}") from exc
        # Publishing reads the decision's changed balances and their partitions (a retry,
        # which reads partition_of, decides by the general path).
        # Each partition's last record is its newest (the intake admits only each partition's
        # next offset): positions need only those, not a look at every record.
        last_records = list({record.partition: record for record in records}.values())
        return _Decided(
            records, decision, {}, self._intake.positions(last_records), now_ms,
            time.perf_counter(),
        )  # fmt: skip

    def _begin(self, records: Sequence[LogRecord], batch: SortedBatch | ColumnBatch) -> None:
        try:
            decided = self._decide(records, batch)
        except DecisionFailed as exc:
            self._isolate(records, exc)
            return
        decided.commit = self._committer.submit(self._commit, decided)
        self._in_flight = decided

    def _commit(self, decided: _Decided) -> None:
        self._writer.commit(
            decided.positions,
            decided.decision,
            decided.applied_at_ms,
            len(decided.records),
            decided.follow_up_group,
            cleared_failures=self._cleared_failures(decided.positions),
        )

    def _cleared_failures(self, positions: Sequence[PartitionClaim]) -> list[int]:
        """Partitions whose counted decision failure these positions move past."""
        if not self._failing:
            return []
        failing = self._failing
        return [
            p.partition
            for p in positions
            if p.partition in failing and failing[p.partition] < p.next_offset
        ]

    def _finish(self, decided: _Decided) -> bool:
        """Wait for a batch's commit; publish it, or retry it here. True if it committed
        as first decided."""
        self._in_flight = None
        assert decided.commit is not None
        try:
            decided.commit.result()
        except Fenced as exc:
            self._intake.fence(decided.records, exc, decided.positions)
            self._observe(decided)
            return False
        except (StoreRejected, DecisionFailed) as exc:
            self._isolate(decided.records, exc)
            self._observe(decided)
            return False
        except LedgerError as exc:
            if not exc.retriable:
                raise
            self._retry(decided.records, exc)
            self._observe(decided)
            return False
        self._published(decided)
        self._observe(decided)
        return True

    def _finish_abandoned(self) -> None:
        """Before a rewind: let a commit still running end, whatever its outcome."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None and in_flight.commit is not None:
            try:
                in_flight.commit.result()
            except Exception as exc:  # the rewind reads what the store has, either way
                log.warning("abandoned batch commit failed", error=str(exc))

    def _retry(self, records: Sequence[LogRecord], error: LedgerError) -> None:
        """The first commit failed: retry with backoff, reading every request's outcome
        (the commit may have happened after all); pause the partitions after the last."""
        partitions = {r.partition for r in records}
        for attempt in range(1, self._config.max_retries + 1):
            metrics.CONSUMER_RETRIES.inc()
            # Memory may not match the store for these partitions: reload them.
            self._memory.reset(partitions)
            log.warning("consumer batch retry", attempt=attempt, error=str(error))
            self._wait(self._config.retry_base_s * 2 ** (attempt - 1))
            try:
                decided = self._decide(records, self._sort(records, check_all=True))
                self._commit(decided)
            except Fenced as exc:  # only the commit fences: ``decided`` is bound
                self._intake.fence(records, exc, decided.positions)
                return
            except (StoreRejected, DecisionFailed) as exc:
                self._isolate(records, exc)
                return
            except LedgerError as exc:
                if not exc.retriable:
                    raise
                error = exc
                continue
            self._published(decided)
            self._republish_current(decided)
            return
        metrics.CONSUMER_RETRIES.inc()
        self._memory.reset(partitions)
        self._intake.pause(records, error)

    # -- a batch that can never pass whole ---------------------------------------
    def _isolate(self, records: Sequence[LogRecord], error: Refusal) -> None:
        """Apply a batch the store refused, or whose decision raised, in parts: the parts
        that pass commit, the culprits go to the DLQ (``isolate``)."""
        # A partition revoked since the batch was polled is another consumer's to apply.
        owned = set(self._intake.owned)
        records = [r for r in records if r.partition in owned]
        if not records:
            return
        partitions = sorted({r.partition for r in records})
        log.warning(
            "consumer batch refused; looking for the record", partitions=partitions,
            records=len(records), error=str(error), reason=error.error_reason,
        )  # fmt: skip
        # Memory follows commits; the batch may come from a retry after an ambiguous one.
        self._memory.reset(partitions)
        isolation = Isolation(
            self._apply_part,
            self._dead_letter,
            self._count_failure,
            self._config.max_decision_failures,
        )
        try:
            result = isolation.run(records, error)
        except Fenced as exc:
            self._memory.reset(partitions)
            self._intake.fence(records, exc, self._intake.positions(records))
            return
        except LedgerError as exc:
            self._memory.reset(partitions)
            if not exc.retriable:
                raise
            # The store or the log failed meanwhile: what committed stays committed; the
            # rest is read again, from each partition's committed position, after a pause.
            self._intake.pause(records, exc)
            return
        for partition, held_by in sorted(result.held.items()):
            self._memory.reset([partition])
            self._intake.pause([r for r in records if r.partition == partition], held_by)

    def _apply_part(self, records: Sequence[LogRecord]) -> None:
        """Decide and commit part of a refused batch, checking every request's outcome."""
        decided = self._decide(records, self._sort(records, check_all=True))
        self._commit(decided)  # refused: nothing written, and memory follows only commits
        self._published(decided)

    def _dead_letter(self, record: LogRecord, error: Refusal) -> None:
        """Send one record to the DLQ, then move its partition past it, its requests
        recorded as dead-lettered (GetChange: FAILED)."""
        reason = STORE_REJECTED if isinstance(error, StoreRejected) else DECISION_FAILED
        text = f"{error.error_reason}: {error}"
        # The DLQ first, durably: the commit below moves the offset past the record.
        self._dead_letters.send([Poison(record, text, reason)])
        request_ids = [
            change.request_id for _, change in self._sort([record], check_all=True).changes
        ]
        letters = [
            DeadLettered(rid, record.topic, record.partition, record.offset, reason, text)
            for rid in request_ids
        ]
        (position,) = self._intake.positions([record])
        cleared = self._cleared_failures([position])
        now_ms = self._intake.stamps.next()
        try:
            self._writer.skip_dead_lettered(position, letters, now_ms, cleared_failures=cleared)
        except StoreRejected as exc:
            # Even the request ids are refused: the DLQ holds the record; move on anyway.
            log.error("dead-letter rows refused; offset moved without them", error=str(exc))
            self._writer.skip_dead_lettered(position, [], now_ms, cleared_failures=cleared)
        self._intake.committed([position])
        self._forget_failures([position])
        # Waiters of these requests look again, and read FAILED.
        self._publisher.publish({}, {}, request_ids)
        log.error(
            "record dead-lettered", reason=reason, topic=record.topic,
            partition=record.partition, offset=record.offset, request_ids=request_ids,
            error=text,
        )  # fmt: skip

    def _count_failure(self, record: LogRecord, error: DecisionFailed) -> int:
        """Count, in the store, one more failure to decide ``record``; the count so far."""
        metrics.CONSUMER_DECISION_FAILURES.inc()
        attempts = self._store.count_record_failure(
            record.topic, record.partition, record.offset, str(error), int(time.time() * 1000)
        )
        self._failing[record.partition] = record.offset
        log.error(
            "deciding a record failed", topic=record.topic, partition=record.partition,
            offset=record.offset, attempts=attempts,
            max_attempts=self._config.max_decision_failures, error=str(error),
            exc_info=error.__cause__ or error,
        )  # fmt: skip
        return attempts

    def _forget_failures(self, positions: Sequence[PartitionClaim]) -> None:
        for partition in self._cleared_failures(positions):
            del self._failing[partition]

    def _published(self, decided: _Decided) -> None:
        decision = decided.decision
        # Counted before waiters wake, so a caller answered APPLIED finds it in the metrics.
        metrics.CHANGES.labels(outcome="applied").inc(decision.applied)
        metrics.CHANGES.labels(outcome="rejected").inc(decision.rejected)
        metrics.DUPLICATE_MESSAGES.inc(decision.duplicates)
        # Committed: memory, caches, waiters and the log's own offsets follow.
        if isinstance(decision, ColumnDecision):  # no outcome objects made for the ids
            request_ids = [row[0] for row in decision.outcome_rows]
        else:
            request_ids = [o.request_id for o in decision.outcomes]
        if isinstance(decision, BatchDecision) and decision.holds:
            self._memory.remember_holds(decision.holds.values(), decided.partition_of)
        if isinstance(decision, ColumnDecision):
            self._publisher.publish_balances(
                decision.changed, decision.changed_partitions, request_ids
            )
        else:
            self._publisher.publish(decision.balances, decided.partition_of, request_ids)
        self._publisher.journaled(
            decided.records, decided.positions, decision.journal,
            complete=not decision.duplicates,
            rows=decision.rows.journal if isinstance(decision, ColumnDecision) else None,
            amount_texts=(
                decision.journal_amount_texts if isinstance(decision, ColumnDecision) else None
            ),
        )  # fmt: skip
        self._intake.committed(decided.positions)
        self._forget_failures(decided.positions)
        if decided.follow_up_group is not None and self._send_on is not None:
            # Committed with the batch: a crash before they are in the log leaves them to
            # the outbox sweep, which publishes their group again.
            self._send_on(decision.follow_ups, decided.applied_at_ms, decided.follow_up_group)

    def _gained(self, partitions: Sequence[int]) -> None:
        """Partitions claimed, or read again: their memory reloads from the store, and their
        last batches are published again."""
        self._memory.reset(partitions)
        self._republish_due.update(partitions)

    def _republish_tails(self) -> None:
        """Publish again the newest balances of each due partition's last records: a kill or
        an error between a commit and its publish leaves the caches behind the store until
        their full sync otherwise."""
        due = set(self._republish_due)
        window = self._config.batch_max_messages * 2  # the batch committing, and the next
        positions = self._store.get_positions(self._config.topic)
        newest: dict[Account, Balance] = {}
        partition_of: dict[Account, int] = {}
        for partition in sorted(due):
            first = max(0, positions.get(partition, 0) - window) * LEGS_PER_MESSAGE
            for entry in self._store.scan_events(partition, first, window * LEGS_PER_MESSAGE):
                balance = entry.balance_after
                known = newest.get(balance.account)
                if known is None or known.version < balance.version:
                    newest[balance.account] = balance
                    partition_of[balance.account] = partition
        if newest:
            self._publisher.republish(newest, partition_of)
        self._republish_due -= due  # kept on a failure above, for the next round

    def _republish_current(self, decided: _Decided) -> None:
        """After a retried commit: the first attempt may have committed after all, and the
        retry then changed none of its accounts; publish their current balances."""
        unpublished = set(decided.partition_of) - set(decided.decision.balances)
        if unpublished:
            current = self._store.load_balances(unpublished)
            self._publisher.republish(current, {a: decided.partition_of[a] for a in current})

    @staticmethod
    def _observe(decided: _Decided) -> None:
        metrics.CONSUMER_BATCH_SIZE.observe(len(decided.records))
        metrics.CONSUMER_APPLY_LATENCY.observe(time.perf_counter() - decided.started)

    def _wait(self, delay_s: float) -> None:
        """Back off; under a supervisor, cut short when asked to stop."""
        if self._lifeline is not None:
            self._lifeline.wait(delay_s)
        else:
            time.sleep(delay_s)
