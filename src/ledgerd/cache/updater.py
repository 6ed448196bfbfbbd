"""The cache updater: keeps a shared cache (Redis) up to date from the cache feed.

Consumers publish each batch's committed balances to the feed topic, one
record per partition (older producers: one record per balance); updaters in
any process consume it in one consumer group, so its partitions are shared
among them. Each poll's balances are written in one last-write-wins batch (the
newest version per account, raising entries only: the feed may replay old
ones), and the group's log offsets are committed only after that write
succeeded: during a cache outage the batch is retried with backoff (health
degraded) and nothing is lost, whichever updater owns the partition next.
The offsets written are committed at most every ``commit_interval_s`` (and
when the feed is idle, the partitions are revoked, or the updater closes), not
after every write: each commit is a broker request, and the broker's CPU
follows requests. After a crash the next owner writes up to that interval
again, which only raises entries to versions they already hold.

The leader also runs full syncs from the store: when it starts, periodically,
when the cache answers again after failures, whenever the cache is not ready
(Redis restarted: see ``ledgerd.cache.redis``), and whenever an answer the
cache missed raised the read fence (``ledgerd.cache.fence``). Between them it
keeps the cache's serving lease alive, for the generation its last full sync
covered, every ``readiness_check_interval_s``.

Two loops, ``run_feed`` and ``run_full_sync``, each take a supervisor
``Lifeline``; ``run_until_idle`` drains the feed once for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import structlog

from ledgerd import metrics
from ledgerd.cache.base import BalanceCache
from ledgerd.cache.fence import CacheFence
from ledgerd.domain.amounts import parse_decimal
from ledgerd.domain.model import Balance
from ledgerd.errors import CacheUnavailable, LedgerError, PoisonMessage
from ledgerd.log.base import EventLog, LogRecord
from ledgerd.log.codec import FeedRow, decode_balance_rows
from ledgerd.runtime.supervisor import Lifeline
from ledgerd.support import failpoints

log = structlog.get_logger(__name__)

# Yields every stored balance (the full sync's source), e.g. a paged store scan.
BalanceSource = Callable[[], Iterator[Balance]]
# Whether this process may run the periodic full sync now (the leader, when elected).
MayRunSingletons = Callable[[], bool]

_FULL_SYNC_BATCH = 1000


@runtime_checkable
class FeedRowSink(Protocol):
    """A cache that takes the feed's rows as decoded (``RedisCache``): no ``Balance`` made."""

    def put_feed_rows(self, rows: Sequence[FeedRow]) -> None: ...


@dataclass
class _Batch:
    """Balances polled from the feed and not yet written, with the offsets to commit after."""

    rows: dict[tuple[int, str], FeedRow] = field(default_factory=dict)  # by user, currency
    next_offsets: dict[int, int] = field(default_factory=dict)
    decoded: int = 0  # balances the records held, before keeping the newest per account

    def add(self, records: Sequence[LogRecord]) -> None:
        next_offsets, rows = self.next_offsets, self.rows
        for record in records:
            partition = record.partition
            next_offsets[partition] = max(next_offsets.get(partition, 0), record.offset + 1)
            try:
                # A batch record, or a single balance from a producer older than batches.
                decoded = decode_balance_rows(record.value)
            except PoisonMessage as exc:
                # The feed is derived data: the full sync repairs what a bad record lacks.
                metrics.CACHE_FEED_POISON.inc()
                log.warning("cache feed record skipped", error=str(exc), offset=record.offset)
                continue
            self.decoded += len(decoded)
            for row in decoded:
                # A plain tuple key: cheaper to build than an Account, for every balance fed.
                account = (row[0], row[1])
                queued = rows.get(account)
                if queued is None or queued[4] < row[4]:
                    rows[account] = row

    def balances(self) -> list[Balance]:
        """The rows as ``Balance`` objects (for a cache that takes only those)."""
        return [
            Balance(user_id, currency, parse_decimal(available), parse_decimal(frozen), version,
                    lock)
            for user_id, currency, available, frozen, version, lock in self.rows.values()
        ]  # fmt: skip


class CacheUpdater:
    """Writes the cache feed to the cache; the leader also runs full syncs from the store."""

    def __init__(
        self,
        cache: BalanceCache,
        event_log: EventLog,
        *,
        topic: str,
        group_id: str,
        batch_max_balances: int = 5000,
        poll_timeout_s: float = 0.5,
        retry_base_s: float = 0.1,
        retry_max_s: float = 5.0,
        full_sync_source: BalanceSource | None = None,
        full_sync_interval_s: float = 300.0,
        may_run_full_sync: MayRunSingletons = lambda: True,
        readiness_check_interval_s: float = 1.0,
        fence: CacheFence | None = None,
        lease_ttl_s: float = 3.0,
        commit_interval_s: float = 1.0,
    ) -> None:
        self._cache = cache
        # The feed's rows go to a cache that takes them as they are, else as balances.
        self._put_rows = cache.put_feed_rows if isinstance(cache, FeedRowSink) else None
        self._log = event_log
        self._topic = topic
        self._group_id = group_id
        self._batch_max_balances = batch_max_balances
        # Records asked of one poll: as many as held about batch_max_balances last time (a
        # record holds a consumer batch's balances of one partition, an old one a single one).
        self._records_per_poll = batch_max_balances
        self._poll_timeout_s = poll_timeout_s
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._full_sync_source = full_sync_source
        self._full_sync_interval_s = full_sync_interval_s
        self._may_run_full_sync = may_run_full_sync
        self._readiness_check_interval_s = readiness_check_interval_s
        # Without a fence (a test's lone process) the lease follows full syncs alone.
        self._fence = fence
        self._lease_ttl_s = lease_ttl_s
        # The fence generation the cache holds everything for (None: not known yet).
        self._synced_generation: int | None = None
        self._lease_renewed_at = 0.0
        self._lease_refused: str | None = None  # why the cache may not serve, when it may not
        # Derived data: past records retention removed, the feed goes on from the oldest
        # kept, and the periodic full sync repairs what it missed (docs/operations.md).
        self._consumer = event_log.consumer(group_id, skip_lost_records=True)
        self._subscribed = False
        self._pending: _Batch | None = None
        # Offsets past balances written to the cache and not yet committed, by partition.
        self._written: dict[int, int] = {}
        self._commit_interval_s = commit_interval_s
        self._commit_due = 0.0  # monotonic
        self._feed_healthy = True
        self._sync_healthy = True
        # A fresh process may find a stale or empty cache.
        self._full_sync_wanted = full_sync_source is not None
        self._wake = threading.Event()

    @property
    def healthy(self) -> bool:
        """False while cache writes or full syncs fail (the service still answers)."""
        return self._feed_healthy and self._sync_healthy and self._lease_refused is None

    # -- the feed -------------------------------------------------------------
    def run_feed(self, lifeline: Lifeline) -> None:
        """Supervised loop: poll, write, commit; on cache failure retry the same batch."""
        failures = 0
        while not lifeline.stopping:
            failpoints.hit("cache_updater.loop")
            try:
                self.feed_once(self._poll_timeout_s)
                failures = 0
            except CacheUnavailable:
                failures += 1
                lifeline.wait(min(self._retry_max_s, self._retry_base_s * 2 ** (failures - 1)))
            # Retrying a cache outage is progress too: health shows it as degraded, not stalled.
            lifeline.beat()

    def feed_once(self, timeout_s: float) -> int:
        """Write one poll's balances (or the batch a failure left); returns records polled.

        Raises:
            CacheUnavailable: the write failed; the batch is kept for the next call.
        """
        self._ensure_subscribed()
        polled = 0
        if self._pending is None:
            records = self._consumer.poll_batch(self._records_per_poll, timeout_s)
            if not records:
                self._commit_written()  # idle: the group's offsets catch up
                return 0
            polled = len(records)
            self._pending = _Batch()
            self._pending.add(records)
            self._records_per_poll = max(
                1, self._batch_max_balances * polled // max(1, self._pending.decoded)
            )
        batch = self._pending
        try:
            if self._put_rows is not None:
                self._put_rows(list(batch.rows.values()))
            else:
                self._cache.put_many(batch.balances())
        except CacheUnavailable as exc:
            if self._feed_healthy:
                log.warning("cache unavailable; holding the feed until it answers", error=str(exc))
            self._feed_healthy = False
            metrics.CACHE_UPDATE_FAILURES.inc()
            raise
        self._pending = None
        self._written.update(batch.next_offsets)
        if time.monotonic() >= self._commit_due:
            self._commit_written()
        metrics.CACHE_UPDATES.inc(len(batch.rows))
        if not self._feed_healthy:
            log.info("cache available again; scheduling a full sync")
            self._feed_healthy = True
            self.request_full_sync()
        return polled

    def _commit_written(self, partitions: Sequence[int] | None = None) -> None:
        """Commit the offsets past what was written (of ``partitions``, else all)."""
        if partitions is None:
            offsets, self._written = self._written, {}
            self._commit_due = time.monotonic() + self._commit_interval_s
        else:
            offsets = {p: self._written.pop(p) for p in partitions if p in self._written}
        if offsets:
            self._consumer.commit(offsets)

    def _ensure_subscribed(self) -> None:
        if not self._subscribed:
            self._log.ensure_topics([self._topic])
            self._consumer.subscribe(self._topic, self._on_assign, self._on_revoke)
            self._subscribed = True

    def _on_assign(self, partitions: Sequence[int]) -> Mapping[int, int]:
        # The group's committed offsets are this role's position: they only move
        # after a successful cache write.
        starts = dict(self._consumer.committed(self._topic, partitions))
        log.info("cache feed partitions assigned", starts=starts)
        return {p: starts.get(p, 0) for p in partitions}

    def _on_revoke(self, partitions: Sequence[int]) -> None:
        # Their next owner re-reads from the committed offsets; writing our held
        # balances later is still harmless (last write wins), committing them is not ours.
        if self._pending is not None:
            for partition in partitions:
                self._pending.next_offsets.pop(partition, None)
        # What was written is ours to commit while the partitions are still ours.
        self._commit_written(partitions)
        log.info("cache feed partitions revoked", partitions=list(partitions))

    # -- full syncs -----------------------------------------------------------
    def request_full_sync(self) -> None:
        self._full_sync_wanted = self._full_sync_source is not None
        self._wake.set()

    def wake(self) -> None:
        """Interrupt the full-sync loop's wait (so that it sees ``stopping``)."""
        self._wake.set()

    def run_full_sync(self, lifeline: Lifeline) -> None:
        """Supervised loop: the leader syncs when wanted, due, or the cache is not ready."""
        while self._full_sync_source is None and not lifeline.stopping:
            lifeline.beat()  # nothing to sync from: idle, not stalled
            lifeline.wait(60.0)
        next_periodic = time.monotonic() + self._full_sync_interval_s
        failures = 0
        while not lifeline.stopping:
            lifeline.beat()
            if time.monotonic() >= next_periodic:
                self._full_sync_wanted = True
            self.full_sync_once(lifeline)
            if self._full_sync_wanted and self._may_run_full_sync():
                failures += 1  # wanted still: the sync failed
                delay = min(self._retry_max_s, self._retry_base_s * 2 ** (failures - 1))
            else:
                failures = 0
                delay = self._readiness_check_interval_s
            if not self._full_sync_wanted:
                next_periodic = max(next_periodic, time.monotonic() + self._full_sync_interval_s)
            self._wake.wait(delay)
            self._wake.clear()

    def full_sync_once(self, lifeline: Lifeline | None = None) -> bool:
        """If this process leads: run a full sync if wanted, the cache is not ready or the
        fence moved on; then renew the cache's serving lease. Returns whether a sync ran."""
        if self._full_sync_source is None or not self._may_run_full_sync():
            return False
        try:
            generation = self._fence.generation() if self._fence is not None else 0
            if not self._full_sync_wanted:
                if generation != self._synced_generation:
                    log.warning("cache read fence raised; running a full sync")
                    self._full_sync_wanted = True
                elif not self._cache.ready():
                    log.warning("cache not ready (restarted?); running a full sync")
                    self._full_sync_wanted = True
        except LedgerError:
            return False  # the feed loop sees a cache outage and asks for a sync after
        synced = False
        if self._full_sync_wanted:
            if not self._full_sync(lifeline):
                return False
            self._full_sync_wanted = False
            self._synced_generation = generation
            synced = True
        self._renew_lease(renew=not synced)
        return synced

    def _renew_lease(self, *, renew: bool = True) -> None:
        """Let the cache serve for another lease, if the fence still stands at the generation
        the cache was synced for and the cache cannot evict balances; ``renew``: only if its
        lease still runs (else a full sync first: see ``BalanceCache.serve_reads``)."""
        generation = self._synced_generation
        if generation is None:
            return
        try:
            risk = self._cache.eviction_risk()
            if risk is not None:
                if self._lease_refused is None:
                    log.error("cache serves no reads: it may drop balances", reason=risk)
                self._lease_refused = risk
                return
            self._lease_refused = None
            lease_s = (
                self._fence.grant(generation, self._lease_ttl_s)
                if self._fence is not None
                else self._lease_ttl_s
            )
            if lease_s is None:
                log.warning("cache read fence raised during the lease; a full sync follows")
                self._full_sync_wanted = True
                return
            if not self._cache.serve_reads(lease_s, renew=renew):
                log.warning("cache lease gone before its time (flushed?); running a full sync")
                self._full_sync_wanted = True
                metrics.CACHE_LEASE_REMAINING.set(0)
                return
            self._lease_renewed_at = time.monotonic()
            metrics.CACHE_LEASE_REMAINING.set(lease_s)
        except LedgerError as exc:
            log.warning("cache serving lease not renewed", error=str(exc))

    def _renew_lease_if_due(self) -> None:
        """During a long full sync: keep serving what the last sync covered."""
        if time.monotonic() - self._lease_renewed_at >= self._readiness_check_interval_s:
            self._renew_lease()

    def _full_sync(self, lifeline: Lifeline | None) -> bool:
        assert self._full_sync_source is not None
        started, count = time.monotonic(), 0
        try:
            sync = self._cache.begin_full_sync()
        except CacheUnavailable as exc:
            return self._sync_failed(exc)
        try:
            batch: list[Balance] = []
            for balance in self._full_sync_source():
                batch.append(balance)
                if len(batch) >= _FULL_SYNC_BATCH:
                    sync.put_many(batch)
                    count, batch = count + len(batch), []
                    self._renew_lease_if_due()
                    if lifeline is not None:
                        if lifeline.stopping:
                            return False
                        lifeline.beat()
            sync.put_many(batch)
            sync.complete()
            count += len(batch)
        except LedgerError as exc:  # the cache, or the store scan
            return self._sync_failed(exc)
        finally:
            sync.close()
        self._sync_healthy = True
        metrics.CACHE_FULL_SYNCS.labels(result="done").inc()
        log.info(
            "cache full sync done", balances=count, seconds=round(time.monotonic() - started, 2)
        )
        return True

    def _sync_failed(self, exc: LedgerError) -> bool:
        log.warning("cache full sync failed; will retry", error=str(exc))
        self._sync_healthy = False
        metrics.CACHE_FULL_SYNCS.labels(result="failed").inc()
        return False

    # -- tests and the simple lifecycle ---------------------------------------
    def run_until_idle(self, poll_timeout_s: float = 0.0, max_polls: int = 1_000_000) -> int:
        """Burst mode: run a wanted full sync, then drain the feed; returns records polled.

        Raises:
            CacheUnavailable: a write failed (the batch is kept for the next call).
        """
        self.full_sync_once()
        seen = 0
        for _ in range(max_polls):
            polled = self.feed_once(poll_timeout_s)
            seen += polled
            if polled == 0 and self._pending is None:
                break
        self.full_sync_once()
        return seen

    def close(self) -> None:
        """Leave the group (after both loops returned); idempotent."""
        self._commit_written()
        self._consumer.close()
