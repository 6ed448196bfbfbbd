"""GetBalance's read path: the cache, then the store, never blocking the event loop.

A read asks the cache's async reader. A miss joins the next store query: the
misses that arrive while one query runs are answered together by one
``load_balances`` on a thread. An account with no stored row is answered as its
zero balance at version 0, and cached as a negative entry, so the next read of
it hits.

Reads never go back in time (docs/architecture.md §1):

* A miss only ever joins a query that has not started: its answer is read from
  the store after the read began, so it is at least as new as anything
  acknowledged before.
* Whatever is answered from the store is written to the cache first
  (``AnswerWriteBack``), so a later read through any process finds this version
  or a newer one. When that write fails, the answer waits until the shared
  cache can serve no read it lacks (``ledgerd.cache.fence``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from ledgerd import metrics
from ledgerd.cache.base import BalanceCache
from ledgerd.cache.fence import CacheFence
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable
from ledgerd.store.base import Store

# Accounts per store query: one statement, well inside the store's key chunking.
MAX_ACCOUNTS_PER_QUERY = 500

_HITS = metrics.CACHE_READS.labels(result="hit")
_NEGATIVE_HITS = metrics.CACHE_READS.labels(result="negative")
_MISSES = metrics.CACHE_READS.labels(result="miss")


class AnswerWriteBack:
    """Makes the cache at least as new as an answer read from the store, before it is given.

    ``fence`` is None only for a cache that serves this process alone (memory), whose
    writes cannot fail.
    """

    def __init__(self, store: Store, cache: BalanceCache, fence: CacheFence | None) -> None:
        self._store = store
        self._cache = cache
        self._fence = fence

    def now(self) -> float:
        """Take before reading the store what will be answered (see ``publish``)."""
        return self._fence.now() if self._fence is not None else 0.0

    def publish(self, current: Collection[Balance], read_began: float) -> float:
        """Write balances read as the store's current ones since ``read_began``; returns the
        seconds to wait before answering (0 unless the write failed). Blocking: on a thread.

        Raises:
            StoreUnavailable: the write failed and the fence could not be raised either.
        """
        if not current:
            return 0.0
        try:
            self._cache.put_many(current, create=True)
            return 0.0
        except CacheUnavailable:
            metrics.CACHE_ANSWER_WRITE_FAILURES.inc(len(current))
            if self._fence is None:
                return 0.0
            return self._fence.raise_after(read_began)

    def publish_current(self, accounts: Collection[Account], read_began: float) -> float:
        """Write the store's current balances of ``accounts`` (an answer carries older ones:
        a journal entry's balance after), as ``publish``.

        Raises:
            StoreUnavailable.
        """
        if not accounts:
            return 0.0
        return self.publish(list(self._store.load_balances(accounts).values()), read_began)


class BalanceReads:
    """Reads balances for one event loop; ``close`` it on that loop."""

    def __init__(
        self, store: Store, cache: BalanceCache, write_back: AnswerWriteBack | None = None
    ) -> None:
        """``write_back`` defaults to an unfenced one (a cache this process alone reads)."""
        self._store = store
        self._write_back = write_back or AnswerWriteBack(store, cache, None)
        self._reader = cache.reader()
        self._misses: list[tuple[Account, asyncio.Future[Balance]]] = []
        self._querying: asyncio.Task[None] | None = None

    async def get(self, account: Account) -> Balance:
        """The account's balance (zeros at version 0 if it has none).

        Raises:
            StoreUnavailable, Overloaded: the cache missed and the store failed.
        """
        try:
            cached = await self._reader.get(account)
        except CacheUnavailable:
            cached = None
        if cached is not None:
            (_HITS if cached.version else _NEGATIVE_HITS).inc()
            return cached
        _MISSES.inc()
        future: asyncio.Future[Balance] = asyncio.get_running_loop().create_future()
        self._misses.append((account, future))
        if self._querying is None:
            self._querying = asyncio.create_task(self._answer_misses())
        return await future

    async def get_all(self, user_id: int) -> Sequence[Balance]:
        """Every balance the user has, from the store (each written to the cache first)."""
        stored, wait_s = await asyncio.to_thread(self._read_user, user_id)
        if wait_s:
            await asyncio.sleep(wait_s)
        return stored

    async def close(self) -> None:
        if self._querying is not None:
            self._querying.cancel()
        await self._reader.close()

    async def _answer_misses(self) -> None:
        batch: list[tuple[Account, asyncio.Future[Balance]]] = []
        try:
            while self._misses:
                batch = self._misses[:MAX_ACCOUNTS_PER_QUERY]
                del self._misses[:MAX_ACCOUNTS_PER_QUERY]
                try:
                    found, wait_s = await asyncio.to_thread(
                        self._read_accounts, {a for a, _ in batch}
                    )
                    if wait_s:
                        await asyncio.sleep(wait_s)
                except Exception as exc:  # the store's error is each caller's answer
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for account, future in batch:
                    if not future.done():
                        future.set_result(found[account])
        finally:
            for _, future in batch + self._misses:  # unanswered only when cancelled (closing)
                future.cancel()
            self._misses.clear()
            self._querying = None

    def _read_accounts(self, accounts: set[Account]) -> tuple[dict[Account, Balance], float]:
        began = self._write_back.now()
        stored = self._store.load_balances(accounts)
        answers = {a: stored.get(a) or Balance(a.user_id, a.currency) for a in accounts}
        return answers, self._write_back.publish(list(answers.values()), began)

    def _read_user(self, user_id: int) -> tuple[Sequence[Balance], float]:
        began = self._write_back.now()
        stored = self._store.get_balances(user_id, None)
        return stored, self._write_back.publish(stored, began)
