"""GetBalance's read path: the cache, then the store, never blocking the event loop.

A read asks the cache's async reader. A miss joins the next store query: the
misses that arrive while one query runs are answered together by one
``load_balances`` on a thread, which also writes what it found to the cache
before any of them is answered (last write wins, so a later read through any
process finds this version or a newer one). An account with no stored row is
answered, and cached, as its zero balance at version 0 (a negative entry), so
the next read of it hits.

Reads never go back in time (docs/architecture.md §1) because a miss only ever
joins a query that has not started: its answer is read from the store after
the read began, so it is at least as new as anything acknowledged before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ledgerd import metrics
from ledgerd.cache.base import BalanceCache
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable
from ledgerd.store.base import Store

# Accounts per store query: one statement, well inside the store's key chunking.
MAX_ACCOUNTS_PER_QUERY = 500

_HITS = metrics.CACHE_READS.labels(result="hit")
_NEGATIVE_HITS = metrics.CACHE_READS.labels(result="negative")
_MISSES = metrics.CACHE_READS.labels(result="miss")


class BalanceReads:
    """Reads balances for one event loop; ``close`` it on that loop."""

    def __init__(self, store: Store, cache: BalanceCache) -> None:
        self._store = store
        self._cache = cache
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
        return await asyncio.to_thread(self._read_user, user_id)

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
                    found = await asyncio.to_thread(self._read_accounts, {a for a, _ in batch})
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

    def _read_accounts(self, accounts: set[Account]) -> dict[Account, Balance]:
        stored = self._store.load_balances(accounts)
        answers = {a: stored.get(a) or Balance(a.user_id, a.currency) for a in accounts}
        self._publish(list(answers.values()))
        return answers

    def _read_user(self, user_id: int) -> Sequence[Balance]:
        stored = self._store.get_balances(user_id, None)
        self._publish(stored)
        return stored

    def _publish(self, balances: Sequence[Balance]) -> None:
        publish_answers(self._cache, balances)


def publish_answers(cache: BalanceCache, balances: Sequence[Balance]) -> None:
    """Make the cache at least as new as an answer before it is given (blocking: on a thread).

    A later read through any process then finds this version or a newer one
    (last write wins, so this never moves the cache back). A failed write only
    counts: the cache is down for everyone, or the feed and the full sync
    repair it (see ``ledgerd.cache.redis`` for the one case this leaves open).
    """
    if not balances:
        return
    try:
        cache.put_many(balances)
    except CacheUnavailable:
        metrics.CACHE_ANSWER_WRITE_FAILURES.inc(len(balances))
