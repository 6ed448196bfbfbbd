"""GetBalance's read path (ledgerd.reads) over the embedded store and an empty memory cache:
negative entries, misses answered together, and never a store answer older than the read.

Changes are applied in burst mode (relay and consumer run until idle); the consumer
writes the rig's own cache, never the one the reads use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Mapping
from typing import Any

import pytest
from component_support import Rig

from ledgerd import metrics
from ledgerd.cache.memory import MemoryCache
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeType
from ledgerd.errors import StoreUnavailable
from ledgerd.reads import BalanceReads


class WatchedStore:
    """The rig's store, counting ``load_balances`` queries; a test may hold one query
    until it lets it go, or make queries fail."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.queries: list[set[Account]] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.failing = False

    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        self.queries.append(set(accounts))
        if self.hold.is_set():
            self.hold.clear()
            found = self._store.load_balances(accounts)  # read now, answered after release
            self.held.set()
            self.release.wait(30)
            return found  # type: ignore[no-any-return]
        if self.failing:
            raise StoreUnavailable("store down (test)")
        return self._store.load_balances(accounts)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def apply(rig: Rig, user_id: int, request_id: str, amount: int = SCALE) -> None:
    rig.accept([ChangeRequest(request_id, user_id, "USD", ChangeType.DEPOSIT, amount)])
    rig.relay(sweep_min_age_s=0.0).run_until_idle()
    consumer = rig.consumer()
    consumer.run_until_idle()
    consumer.close()


def reads_count(result: str) -> float:
    return metrics.CACHE_READS.labels(result=result)._value.get()  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def store(rig: Rig) -> WatchedStore:
    return WatchedStore(rig.store)


def test_an_untouched_account_is_cached_as_a_negative_entry(rig: Rig, store: WatchedStore) -> None:
    """The first read of an account with no row misses and caches zeros at version 0; the
    next read hits that entry without asking the store."""
    cache = MemoryCache()

    async def scenario() -> tuple[Balance, Balance]:
        reads = BalanceReads(store, cache)  # type: ignore[arg-type]
        try:
            return await reads.get(Account(99, "EUR")), await reads.get(Account(99, "EUR"))
        finally:
            await reads.close()

    negative_before = reads_count("negative")
    first, second = asyncio.run(scenario())
    assert first == second == Balance(99, "EUR")
    assert cache.get(Account(99, "EUR")) == Balance(99, "EUR", 0, 0, 0)
    assert len(store.queries) == 1
    assert reads_count("negative") == negative_before + 1


def test_a_change_applied_after_a_negative_entry_is_read(rig: Rig, store: WatchedStore) -> None:
    """Reads share the consumer's memory cache here (the embedded deployment): the
    account's first applied change replaces the negative entry, and reads return it."""
    cache = rig.cache

    async def read() -> Balance:
        reads = BalanceReads(store, cache)  # type: ignore[arg-type]
        try:
            return await reads.get(Account(5, "USD"))
        finally:
            await reads.close()

    assert asyncio.run(read()) == Balance(5, "USD")
    assert cache.get(Account(5, "USD")) == Balance(5, "USD")
    apply(rig, 5, "first")
    assert asyncio.run(read()) == Balance(5, "USD", SCALE, 0, 1)


def test_concurrent_misses_are_answered_by_one_store_query(rig: Rig, store: WatchedStore) -> None:
    """Misses of many accounts issued together cost one store query; each caller gets its
    own account's balance, stored or zeros, and every answer is written to the cache."""
    for user in range(1, 11):
        apply(rig, user, f"c-{user}", amount=user * SCALE)
    cache = MemoryCache()
    accounts = [Account(user, "USD") for user in range(1, 21)]

    async def scenario() -> list[Balance]:
        reads = BalanceReads(store, cache)  # type: ignore[arg-type]
        try:
            return list(await asyncio.gather(*(reads.get(a) for a in accounts)))
        finally:
            await reads.close()

    found = asyncio.run(scenario())
    expected = [
        Balance(a.user_id, "USD", a.user_id * SCALE, 0, 1)
        if a.user_id <= 10
        else Balance(a.user_id, "USD")
        for a in accounts
    ]
    assert found == expected
    assert store.queries == [set(accounts)]
    assert [cache.get(a) for a in accounts] == expected


def test_a_miss_never_joins_a_store_query_already_running(rig: Rig, store: WatchedStore) -> None:
    """A read that misses while a query is in flight waits for the next query, so it sees a
    change committed after the running query read the store: no read returns a version
    older than one applied (and possibly acknowledged) before it began."""
    cache = MemoryCache()
    account = Account(3, "USD")

    async def scenario() -> tuple[Balance, Balance]:
        reads = BalanceReads(store, cache)  # type: ignore[arg-type]
        try:
            store.hold.set()
            early = asyncio.ensure_future(reads.get(account))
            await asyncio.to_thread(store.held.wait, 30)  # the first query has read: no row
            await asyncio.to_thread(apply, rig, 3, "late")
            late = asyncio.ensure_future(reads.get(account))
            await asyncio.sleep(0)  # one loop turn: the late read now waits for a query
            store.release.set()
            return await early, await late
        finally:
            await reads.close()

    early, late = asyncio.run(scenario())
    assert early == Balance(3, "USD")
    assert late == Balance(3, "USD", SCALE, 0, 1)
    assert len(store.queries) == 2
    assert cache.get(account) == late  # the negative entry did not overwrite it


def test_a_store_failure_fails_the_waiting_reads_and_the_next_ones_recover(
    rig: Rig, store: WatchedStore
) -> None:
    """Every read waiting on a failed query gets the store's error; later reads query again."""
    apply(rig, 8, "r-1")
    cache = MemoryCache()

    async def scenario() -> tuple[list[BaseException | Balance], Balance]:
        reads = BalanceReads(store, cache)  # type: ignore[arg-type]
        try:
            store.failing = True
            failed = await asyncio.gather(
                *(reads.get(Account(8, "USD")) for _ in range(5)), return_exceptions=True
            )
            store.failing = False
            return list(failed), await reads.get(Account(8, "USD"))
        finally:
            await reads.close()

    failed, recovered = asyncio.run(scenario())
    assert all(isinstance(f, StoreUnavailable) for f in failed)
    assert recovered == Balance(8, "USD", SCALE, 0, 1)
