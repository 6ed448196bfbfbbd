"""The cache updater: writes committed balances to a shared cache off the consumer's thread.

The consumer hands over balances after each commit and moves on. Each
worker owns a shard of accounts, keeps only the newest pending version per
account, and writes its shard in one pipelined batch per interval. If the
cache is down, pending writes stay (bounded) and a full sync from the store
runs when it answers again, so the cache converges without blocking writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

import structlog

from ledgerd import metrics
from ledgerd.cache.base import BalanceCache
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import LedgerError

log = structlog.get_logger(__name__)

# Yields every stored balance (the full sync's source), e.g. a paged store scan.
BalanceSource = Callable[[], Iterator[Balance]]
# Whether this process may run the periodic full sync now (the leader, when elected).
MayRunSingletons = Callable[[], bool]


class CacheUpdater:
    """Batches cache writes by shard on worker threads; also the periodic full sync."""

    def __init__(
        self,
        cache: BalanceCache,
        *,
        workers: int = 4,
        interval_s: float = 0.1,
        max_pending_per_worker: int = 250_000,
        full_sync_source: BalanceSource | None = None,
        full_sync_interval_s: float = 300.0,
        may_run_full_sync: MayRunSingletons = lambda: True,
    ) -> None:
        self._cache = cache
        self._interval_s = interval_s
        self._max_pending = max_pending_per_worker
        self._pending: list[dict[Account, Balance]] = [{} for _ in range(workers)]
        self._locks = [threading.Lock() for _ in range(workers)]
        self._full_sync_source = full_sync_source
        self._full_sync_interval_s = full_sync_interval_s
        self._may_run_full_sync = may_run_full_sync
        self._full_sync_wanted = threading.Event()
        self._healthy = True
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def healthy(self) -> bool:
        return self._healthy

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._work, args=(shard,), name=f"cache-{shard}", daemon=True)
            for shard in range(len(self._pending))
        ]
        if self._full_sync_source is not None:
            self._full_sync_wanted.set()  # a fresh process may find a stale or empty cache
            self._threads.append(
                threading.Thread(target=self._full_sync_loop, name="cache-sync", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Write what is pending once more, then stop; idempotent."""
        self._stop.set()
        self._full_sync_wanted.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def put_many(self, balances: Iterable[Balance]) -> None:
        """Queue balances for their shards; never blocks on the cache."""
        shards = len(self._pending)
        for balance in balances:
            account = balance.account
            shard = hash(account) % shards
            with self._locks[shard]:
                pending = self._pending[shard]
                queued = pending.get(account)
                if queued is None or queued.version < balance.version:
                    if queued is None and len(pending) >= self._max_pending:
                        # Bounded memory: the full sync repairs what is dropped here.
                        self._full_sync_wanted.set()
                        continue
                    pending[account] = balance

    def flush(self) -> None:
        """Write every shard now (tests and shutdown)."""
        for shard in range(len(self._pending)):
            self._write_shard(shard)

    def _work(self, shard: int) -> None:
        while not self._stop.wait(self._interval_s):
            self._write_shard(shard)
        self._write_shard(shard)

    def _write_shard(self, shard: int) -> None:
        with self._locks[shard]:
            batch, self._pending[shard] = self._pending[shard], {}
        if not batch:
            return
        try:
            self._cache.put_many(batch.values())
        except LedgerError as exc:
            if self._healthy:
                log.warning("cache unavailable; keeping updates pending", error=str(exc))
            self._healthy = False
            metrics.CACHE_UPDATE_FAILURES.inc()
            with self._locks[shard]:
                for account, balance in batch.items():
                    newer = self._pending[shard].get(account)
                    if newer is None or newer.version < balance.version:
                        self._pending[shard][account] = balance
            return
        if not self._healthy:
            log.info("cache available again; scheduling a full sync")
            self._healthy = True
            self._full_sync_wanted.set()
        metrics.CACHE_UPDATES.inc(len(batch))

    def _full_sync_loop(self) -> None:
        while not self._stop.is_set():
            self._full_sync_wanted.wait(self._full_sync_interval_s)
            if self._stop.is_set():
                return
            self._full_sync_wanted.clear()
            if self._may_run_full_sync():
                self._full_sync()

    def _full_sync(self) -> None:
        assert self._full_sync_source is not None
        started, count = time.monotonic(), 0
        batch: list[Balance] = []
        try:
            for balance in self._full_sync_source():
                batch.append(balance)
                if len(batch) >= 1000:
                    self._cache.put_many(batch)
                    count, batch = count + len(batch), []
                if self._stop.is_set():
                    return
            self._cache.put_many(batch)
            count += len(batch)
        except LedgerError as exc:
            log.warning("cache full sync failed; will retry", error=str(exc))
            self._healthy = False
            return
        log.info(
            "cache full sync done", balances=count, seconds=round(time.monotonic() - started, 2)
        )
