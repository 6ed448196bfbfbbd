"""The BalanceCache and NonceCache contracts, run against memory and Redis.

Every read is made through both read paths, the synchronous ``get`` and the
API's async reader (``BalanceCache.reader``), which must agree.

Each Redis test uses a key prefix of its own. Losing Redis's state is simulated
with SCRIPT FLUSH: like a restart, it empties the script cache, which is what
the readiness rule rests on (DEBUG RELOAD is disabled on Debian's Redis, and
FLUSHALL would wipe other tests' keys).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis
from harness import free_port
from harness.redis_keys import delete_prefix, redis_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerd.api.nonces import MemoryNonceCache, RedisNonceCache
from ledgerd.cache.base import AsyncBalanceReader, BalanceCache
from ledgerd.cache.memory import MemoryCache
from ledgerd.cache.redis import NEGATIVE_ENTRY_TTL_S, RedisCache
from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable

_users = itertools.count(1)
T = TypeVar("T")


def on_reader(cache: BalanceCache, use: Callable[[AsyncBalanceReader], Awaitable[T]]) -> T:
    """Run ``use(reader)`` on a fresh event loop with a reader of its own."""

    async def main() -> T:
        reader = cache.reader()
        try:
            return await use(reader)
        finally:
            await reader.close()

    return asyncio.run(main())


def cached(cache: BalanceCache, account: Account) -> Balance | None:
    """What the cache holds, read both ways (the two read paths must agree)."""
    synchronous = cache.get(account)
    assert on_reader(cache, lambda reader: reader.get(account)) == synchronous
    return synchronous


def balance(user_id: int, version: int, available: int = 0) -> Balance:
    return Balance(user_id, "USD", available, 0, version)


def fresh_prefix() -> str:
    return f"ledgerd-contract-{uuid.uuid4().hex[:10]}:"


def lose_state() -> None:
    """What a Redis restart does to the script cache (the data may come back older)."""
    client = redis.Redis.from_url(redis_url())
    try:
        client.script_flush("SYNC")
    finally:
        client.close()


def vouch(cache: BalanceCache) -> None:
    """An empty full sync and a lease: the cache serves reads."""
    sync = cache.begin_full_sync()
    try:
        sync.complete()
    finally:
        sync.close()
    assert cache.serve_reads(600, renew=False)


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[BalanceCache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    prefix = fresh_prefix()
    backend = RedisCache(redis_url(), prefix=prefix)
    vouch(backend)
    yield backend
    backend.close()
    delete_prefix(prefix)


@pytest.fixture
def redis_cache() -> Iterator[RedisCache]:
    prefix = fresh_prefix()
    backend = RedisCache(redis_url(), prefix=prefix)
    yield backend
    backend.close()
    delete_prefix(prefix)


# -- last write wins ---------------------------------------------------------
def test_get_of_an_absent_account_is_none(cache: BalanceCache) -> None:
    """An account never put reads as not cached."""
    assert cached(cache, Account(next(_users), "USD")) is None


def test_newer_version_replaces_the_cached_balance(cache: BalanceCache) -> None:
    """A put with a higher version replaces the cached balance, amounts included."""
    user = next(_users)
    cache.put_many([balance(user, 1, 10)], create=True)
    cache.put_many([balance(user, 2, 20)], create=True)
    assert cached(cache, Account(user, "USD")) == balance(user, 2, 20)


def test_a_cached_balance_keeps_its_lock_and_loses_it_with_the_unlock(
    cache: BalanceCache,
) -> None:
    """A balance's lock is cached with its amounts: GetBalance from the cache shows it, and
    the unlock's newer version clears it."""
    user = next(_users)
    locked = Balance(user, "USD", 10, 0, 2, lock=2)
    cache.put_many([balance(user, 1, 10), locked], create=True)
    assert cached(cache, Account(user, "USD")) == locked
    cache.put_many([Balance(user, "USD", 10, 0, 3, lock=0)], create=True)
    assert cached(cache, Account(user, "USD")) == Balance(user, "USD", 10, 0, 3)


def test_older_version_never_overwrites_a_newer_one(cache: BalanceCache) -> None:
    """A late put of a lower or equal version leaves the newer cached balance."""
    user = next(_users)
    cache.put_many([balance(user, 5, 50)], create=True)
    cache.put_many([balance(user, 4, 40)], create=True)
    cache.put_many([balance(user, 5, 99)], create=True)
    assert cached(cache, Account(user, "USD")) == balance(user, 5, 50)


def test_newest_version_wins_within_one_batch(cache: BalanceCache) -> None:
    """Out-of-order versions of one account in one batch leave the highest version."""
    user = next(_users)
    cache.put_many([balance(user, 2, 2), balance(user, 3, 3), balance(user, 1, 1)], create=True)
    assert cached(cache, Account(user, "USD")) == balance(user, 3, 3)


def test_accounts_are_independent(cache: BalanceCache) -> None:
    """Currencies of one user and different users are separate entries."""
    user = next(_users)
    cache.put_many(
        [balance(user, 3), Balance(user, "EUR", 7, 1, 1), balance(user + 1, 9)], create=True
    )
    assert cached(cache, Account(user, "USD")) == balance(user, 3)
    assert cached(cache, Account(user, "EUR")) == Balance(user, "EUR", 7, 1, 1)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(st.integers(1, 30), min_size=1, max_size=8), min_size=1, max_size=8))
def test_cached_version_is_the_highest_ever_put(
    cache: BalanceCache, batches: list[list[int]]
) -> None:
    """Whatever the order and grouping of puts, the cache holds the highest version put."""
    user = next(_users)
    for versions in batches:
        cache.put_many([balance(user, v, v) for v in versions], create=True)
    highest = max(v for versions in batches for v in versions)
    assert cached(cache, Account(user, "USD")) == balance(user, highest, highest)


def test_a_write_that_may_be_historical_never_creates_an_entry(cache: BalanceCache) -> None:
    """Without ``create`` a put only raises an entry the cache holds: after an eviction or a
    DEL, a late write of an old version (a feed replay, a journal entry's balance after)
    must not plant it, since the entry that vanished may have held a newer one."""
    user = next(_users)
    cache.put_many([balance(user, 3, 3)])
    assert cached(cache, Account(user, "USD")) is None
    cache.put_many([balance(user, 1, 1)], create=True)
    cache.put_many([balance(user, 4, 4)])
    assert cached(cache, Account(user, "USD")) == balance(user, 4, 4)


def test_redis_after_a_del_a_historical_write_leaves_the_account_uncached(
    redis_cache: RedisCache,
) -> None:
    """An entry deleted (by an operator, or evicted) stays absent when an older version is
    written back without ``create``: the next read misses and goes to the store."""
    user = next(_users)
    vouch(redis_cache)
    redis_cache.put_many([balance(user, 9, 9)], create=True)
    admin = redis.Redis.from_url(redis_url())
    try:
        admin.delete(redis_cache.balance_key(Account(user, "USD")))
    finally:
        admin.close()
    redis_cache.put_many([balance(user, 5, 5)])
    assert cached(redis_cache, Account(user, "USD")) is None


# -- negative entries ----------------------------------------------------------
def test_a_negative_entry_reads_as_the_zero_balance_at_version_0(cache: BalanceCache) -> None:
    """An untouched account cached as zeros at version 0 is a hit, not a miss."""
    user = next(_users)
    cache.put_many([Balance(user, "USD")], create=True)
    assert cached(cache, Account(user, "USD")) == Balance(user, "USD", 0, 0, 0)


def test_the_first_real_balance_replaces_a_negative_entry(cache: BalanceCache) -> None:
    """Version 1 is newer than the negative entry's version 0."""
    user = next(_users)
    cache.put_many([Balance(user, "USD")], create=True)
    cache.put_many([balance(user, 1, 10)], create=True)
    assert cached(cache, Account(user, "USD")) == balance(user, 1, 10)


def test_a_negative_entry_never_replaces_a_real_balance(cache: BalanceCache) -> None:
    """A late negative entry (a read that found no row before the first change committed)
    leaves the real balance, in another batch or the same one."""
    user = next(_users)
    cache.put_many([balance(user, 2, 20)], create=True)
    cache.put_many([Balance(user, "USD")], create=True)
    assert cached(cache, Account(user, "USD")) == balance(user, 2, 20)
    other = next(_users)
    cache.put_many([balance(other, 1, 1), Balance(other, "USD")], create=True)
    assert cached(cache, Account(other, "USD")) == balance(other, 1, 1)


def test_redis_negative_entries_expire_and_real_balances_do_not(redis_cache: RedisCache) -> None:
    """A negative entry carries a TTL, so probing untouched accounts cannot fill Redis;
    the real balance that replaces it is kept without one."""
    user = next(_users)
    account = Account(user, "USD")
    admin = redis.Redis.from_url(redis_url())
    try:
        redis_cache.put_many([Balance(user, "USD")], create=True)
        assert 0 < admin.ttl(redis_cache.balance_key(account)) <= NEGATIVE_ENTRY_TTL_S
        redis_cache.put_many([balance(user, 1, 1)], create=True)
        assert admin.ttl(redis_cache.balance_key(account)) == -1  # no expiry
    finally:
        admin.close()


def test_redis_feed_rows_write_the_hash_fields_balances_write(redis_cache: RedisCache) -> None:
    """put_feed_rows (the cache updater's rows, amounts as text) leaves each hash with the
    very fields put_many leaves for the same balances, raises only (an older version is
    ignored, an absent account is not created) and writes more than one script call holds."""
    users = [next(_users) for _ in range(1203)]
    balances = [
        Balance(user, "USD", user * 10**17 + 5, (user % 3) * 10**18, 4, user % 2) for user in users
    ]
    admin = redis.Redis.from_url(redis_url())
    other = fresh_prefix()
    expected = RedisCache(redis_url(), prefix=other)
    try:
        for cache in (redis_cache, expected):
            cache.put_many([Balance(user, "USD", 0, 0, 1) for user in users[:-1]], create=True)
        expected.put_many(balances)
        rows = [
            (b.user_id, b.currency, format_amount(b.available), format_amount(b.frozen),
             b.version, b.lock)
            for b in balances
        ]  # fmt: skip
        redis_cache.put_feed_rows(rows)
        for balance in balances:
            account = balance.account
            written = admin.hgetall(redis_cache.balance_key(account))
            assert written == admin.hgetall(expected.balance_key(account))
        assert not admin.exists(redis_cache.balance_key(Account(users[-1], "USD")))
        redis_cache.put_feed_rows([(users[0], "USD", "1", "0", 3, 0)])  # older: ignored
        assert admin.hget(redis_cache.balance_key(Account(users[0], "USD")), "version") == b"4"
    finally:
        admin.close()
        expected.close()
        delete_prefix(other)


def test_redis_negative_entries_are_bounded_per_period() -> None:
    """At most ``negative_entries_max`` negative entries are created per expiry period, so a
    client reading accounts that do not exist cannot grow Redis; real balances are not
    counted."""
    prefix = fresh_prefix()
    bounded = RedisCache(redis_url(), prefix=prefix, negative_entries_max=5)
    try:
        users = [next(_users) for _ in range(12)]
        bounded.put_many([Balance(u, "USD") for u in users[:8]], create=True)
        bounded.put_many([Balance(u, "USD") for u in users[8:]], create=True)
        bounded.put_many([balance(next(_users), 1, 1)], create=True)
        admin = redis.Redis.from_url(redis_url())
        try:
            negative = [u for u in users if admin.exists(bounded.balance_key(Account(u, "USD")))]
        finally:
            admin.close()
        assert len(negative) == 5
    finally:
        bounded.close()
        delete_prefix(prefix)


# -- the async reader ----------------------------------------------------------
def test_concurrent_reads_each_get_their_own_account(cache: BalanceCache) -> None:
    """Many reads in flight at once (sent together) each answer their own account, present
    or absent, in whatever order they were issued."""
    users = [next(_users) for _ in range(300)]
    cache.put_many([balance(u, i + 1, i) for i, u in enumerate(users) if i % 3], create=True)

    async def read_all(reader: AsyncBalanceReader) -> list[Balance | None]:
        return list(await asyncio.gather(*(reader.get(Account(u, "USD")) for u in users)))

    found = on_reader(cache, read_all)
    assert found == [balance(u, i + 1, i) if i % 3 else None for i, u in enumerate(users)]


def test_a_cancelled_read_does_not_shift_the_replies_of_others(cache: BalanceCache) -> None:
    """A caller that gives up while its read is in flight leaves the others' answers right."""
    users = [next(_users) for _ in range(20)]
    cache.put_many([balance(u, i + 1) for i, u in enumerate(users)], create=True)

    async def read_all(reader: AsyncBalanceReader) -> list[Balance | None]:
        tasks = [asyncio.ensure_future(reader.get(Account(u, "USD"))) for u in users]
        await asyncio.sleep(0)  # every read has been issued
        for task in tasks[::4]:
            task.cancel()
        kept = [t for i, t in enumerate(tasks) if i % 4]
        found = list(await asyncio.gather(*kept))
        found.append(await reader.get(Account(users[0], "USD")))  # the connection still serves
        return found

    expected = [balance(u, i + 1) for i, u in enumerate(users) if i % 4]
    assert on_reader(cache, read_all) == [*expected, balance(users[0], 1)]


def _record_writes(reader: AsyncBalanceReader) -> list[bytes]:
    """What the Redis reader's connection writes from now on (it must be connected)."""
    connection = reader._connection._connection  # type: ignore[attr-defined]
    transport = connection._transport
    written: list[bytes] = []
    write = transport.write

    def recorded(data: bytes) -> None:
        written.append(bytes(data))
        write(data)

    transport.write = recorded
    return written


def test_redis_reads_issued_together_leave_as_one_script_call(redis_cache: RedisCache) -> None:
    """Reads issued in one loop turn cost Redis one EVALSHA (one lease check), not one
    each, and still each get their own account: present, absent or a negative entry."""
    vouch(redis_cache)
    users = [next(_users) for _ in range(40)]
    redis_cache.put_many(
        [
            balance(u, 0) if i % 5 == 0 else balance(u, i, i)
            for i, u in enumerate(users)
            if i % 2 == 0
        ],
        create=True,
    )

    async def read_all(reader: AsyncBalanceReader) -> tuple[list[Balance | None], list[bytes]]:
        await reader.get(Account(users[0], "USD"))  # connects
        written = _record_writes(reader)
        found = list(await asyncio.gather(*(reader.get(Account(u, "USD")) for u in users)))
        return found, written

    found, written = on_reader(redis_cache, read_all)
    expected = [
        (balance(u, 0) if i % 5 == 0 else balance(u, i, i)) if i % 2 == 0 else None
        for i, u in enumerate(users)
    ]
    assert found == expected
    assert b"".join(written).count(b"EVALSHA") == 1


def test_redis_read_issued_after_its_batch_left_goes_in_the_next_one(
    redis_cache: RedisCache,
) -> None:
    """A read never joins a batch already written (its reply could predate the read): one
    issued after the batch left goes out in the next write, alone."""
    vouch(redis_cache)
    first, second = next(_users), next(_users)
    redis_cache.put_many([balance(first, 1, 1), balance(second, 2, 2)], create=True)

    async def scenario(reader: AsyncBalanceReader) -> tuple[list[Balance | None], list[bytes]]:
        await reader.get(Account(first, "USD"))  # connects
        written = _record_writes(reader)
        early = asyncio.ensure_future(reader.get(Account(first, "USD")))
        for _ in range(10):  # loop turns until its batch has left (the next turn's end)
            if written:
                break
            await asyncio.sleep(0)
        assert len(written) == 1
        late = asyncio.ensure_future(reader.get(Account(second, "USD")))
        return list(await asyncio.gather(early, late)), written

    found, written = on_reader(redis_cache, scenario)
    assert found == [balance(first, 1, 1), balance(second, 2, 2)]
    assert len(written) == 2
    assert [w.count(b"EVALSHA") for w in written] == [1, 1]
    assert f":{second}:".encode() not in written[0]


def test_redis_reads_batched_together_all_miss_once_the_lease_is_gone(
    redis_cache: RedisCache,
) -> None:
    """The lease checked once for a batch answers every read of it: without a lease, all
    of them read as misses, though Redis holds their entries."""
    vouch(redis_cache)
    users = [next(_users) for _ in range(10)]
    redis_cache.put_many([balance(u, 3, 3) for u in users], create=True)
    with redis.Redis.from_url(redis_url()) as client:
        client.delete(redis_cache.serving_key)

    async def read_all(reader: AsyncBalanceReader) -> list[Balance | None]:
        return list(await asyncio.gather(*(reader.get(Account(u, "USD")) for u in users)))

    assert on_reader(redis_cache, read_all) == [None] * len(users)


def test_redis_reader_reconnects_after_losing_its_connection(redis_cache: RedisCache) -> None:
    """A connection killed under the reader fails that read as CacheUnavailable; once the
    breaker's pause is over, the next read connects again and is served."""
    user = next(_users)
    vouch(redis_cache)
    redis_cache.put_many([balance(user, 4, 4)], create=True)
    account = Account(user, "USD")

    async def scenario(reader: AsyncBalanceReader) -> Balance | None:
        assert await reader.get(account) == balance(user, 4, 4)
        admin = redis.Redis.from_url(redis_url())
        try:
            for client in admin.client_list():
                if client["cmd"] == "evalsha" and client["id"] != str(admin.client_id()):
                    admin.client_kill_filter(_id=client["id"])
        finally:
            admin.close()
        failures = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                return await reader.get(account)
            except CacheUnavailable:
                failures += 1
                await asyncio.sleep(0.05)
        raise AssertionError(f"never served again ({failures} failures)")

    assert on_reader(redis_cache, scenario) == balance(user, 4, 4)


def test_redis_reader_that_gets_no_reply_gives_up(redis_cache: RedisCache) -> None:
    """A server that accepts the connection but never answers fails the read as
    CacheUnavailable (short timeout) and trips the breaker, instead of hanging."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    cache = RedisCache(
        f"redis://127.0.0.1:{silent.getsockname()[1]}/0", prefix=fresh_prefix(), timeout_s=0.2
    )

    async def scenario(reader: AsyncBalanceReader) -> None:
        with pytest.raises(CacheUnavailable, match="no reply"):
            await reader.get(Account(1, "USD"))
        with pytest.raises(CacheUnavailable, match="recently unreachable"):
            await reader.get(Account(1, "USD"))

    try:
        on_reader(cache, scenario)
    finally:
        cache.close()
        silent.close()


# -- readiness ---------------------------------------------------------------
def test_memory_cache_is_always_ready() -> None:
    """Process memory cannot come back older than it was, so it always serves reads."""
    cache = MemoryCache()
    assert cache.ready()
    cache.put_many([balance(1, 1)], create=True)
    assert cached(cache, Account(1, "USD")) == balance(1, 1)


def test_redis_serves_no_reads_before_a_full_sync(redis_cache: RedisCache) -> None:
    """A Redis no full sync has vouched for reads as a miss, though it holds the entry."""
    redis_cache.put_many([balance(1, 1)], create=True)
    assert not redis_cache.ready()
    assert cached(redis_cache, Account(1, "USD")) is None
    vouch(redis_cache)
    assert redis_cache.ready()
    assert cached(redis_cache, Account(1, "USD")) == balance(1, 1)


def test_redis_serves_reads_only_while_its_lease_runs(redis_cache: RedisCache) -> None:
    """Synced, but once its lease ran out Redis reads as a miss (the fence stops it serving
    by letting the lease run out); a lease that ran out is not renewed, only granted again
    after a full sync."""
    user = next(_users)
    vouch(redis_cache)
    redis_cache.put_many([balance(user, 2, 2)], create=True)
    assert cached(redis_cache, Account(user, "USD")) == balance(user, 2, 2)
    assert redis_cache.serve_reads(0.2, renew=True)
    deadline = time.monotonic() + 5
    while cached(redis_cache, Account(user, "USD")) is not None:
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.05)
    assert not redis_cache.serve_reads(60, renew=True)
    assert not redis_cache.serve_reads(60, renew=False)  # no full sync since
    vouch(redis_cache)
    assert cached(redis_cache, Account(user, "USD")) == balance(user, 2, 2)


def test_redis_flushed_during_a_full_sync_gets_no_lease(redis_cache: RedisCache) -> None:
    """Keys lost while a full sync runs (FLUSHDB: the sync's marker goes with them) fail the
    sync: a write-back delayed in flight may have planted an older entry meanwhile."""
    lose_state()
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(next(_users), 1)])
    delete_prefix(redis_cache.balance_key(Account(0, "")).rsplit("balance:", 1)[0])
    with pytest.raises(CacheUnavailable, match="lost"):
        sync.complete()
    sync.close()
    assert not redis_cache.serve_reads(60, renew=False)


def test_redis_eviction_risk_names_a_policy_that_may_drop_balances(
    redis_cache: RedisCache,
) -> None:
    """The shared test Redis runs noeviction: no risk (a private one with allkeys-lru is
    refused a lease in tests/component/test_read_fence.py)."""
    assert redis_cache.eviction_risk() is None


def test_redis_after_losing_its_state_reads_as_a_miss_until_a_full_sync(
    redis_cache: RedisCache,
) -> None:
    """After a restart (script cache flushed) reads miss; writes go on; a full sync restores."""
    user = next(_users)
    vouch(redis_cache)
    redis_cache.put_many([balance(user, 1)], create=True)
    lose_state()
    assert cached(redis_cache, Account(user, "USD")) is None
    assert not redis_cache.ready()
    redis_cache.put_many([balance(user, 2)])  # last write wins still works meanwhile
    assert cached(redis_cache, Account(user, "USD")) is None
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(user, 3, 3)])
    sync.complete()
    sync.close()
    assert cached(redis_cache, Account(user, "USD")) == balance(user, 3, 3)


def test_full_sync_writes_are_last_write_wins(redis_cache: RedisCache) -> None:
    """A full sync carrying an older version than the cache holds does not move it back."""
    user = next(_users)
    redis_cache.put_many([balance(user, 7, 7)], create=True)
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(user, 6, 6)])
    sync.complete()
    sync.close()
    assert redis_cache.serve_reads(600, renew=False)
    assert cached(redis_cache, Account(user, "USD")) == balance(user, 7, 7)


def test_full_sync_whose_connection_broke_never_makes_redis_ready(
    redis_cache: RedisCache,
) -> None:
    """A sync cut off mid-way (as by a restart) fails instead of reconnecting and vouching."""
    lose_state()
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(next(_users), 1)])
    admin = redis.Redis.from_url(redis_url())
    try:
        sync_connection = sync._client.client_id()
        admin.client_kill_filter(_id=sync_connection)
    finally:
        admin.close()
    with pytest.raises(CacheUnavailable):
        sync.complete()
    sync.close()
    assert not redis_cache.ready()


# -- Redis down --------------------------------------------------------------
def test_redis_down_fails_fast_then_trips_the_breaker() -> None:
    """Against a closed port, calls raise CacheUnavailable at once, and then skip Redis."""
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", prefix=fresh_prefix())
    started = time.monotonic()
    with pytest.raises(CacheUnavailable):
        cache.get(Account(1, "USD"))
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    for _ in range(100):
        with pytest.raises(CacheUnavailable, match="recently unreachable"):
            cache.get(Account(1, "USD"))
    with pytest.raises(CacheUnavailable):
        cache.put_many([balance(1, 1)], create=True)
    assert time.monotonic() - started < 0.1
    with pytest.raises(CacheUnavailable):
        cache.ready()
    with pytest.raises(CacheUnavailable):
        cache.begin_full_sync()
    cache.close()


def test_redis_down_fails_the_async_reader_then_trips_the_breaker() -> None:
    """The reader against a closed port raises CacheUnavailable, then skips Redis."""
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", prefix=fresh_prefix())

    async def scenario(reader: AsyncBalanceReader) -> None:
        with pytest.raises(CacheUnavailable, match="cannot connect"):
            await reader.get(Account(1, "USD"))
        for _ in range(100):
            with pytest.raises(CacheUnavailable, match="recently unreachable"):
                await reader.get(Account(1, "USD"))

    on_reader(cache, scenario)
    cache.close()


# -- nonces ------------------------------------------------------------------
@pytest.fixture(params=["memory", "redis"])
def nonces(request: pytest.FixtureRequest) -> Iterator[MemoryNonceCache | RedisNonceCache]:
    if request.param == "memory":
        yield MemoryNonceCache()
        return
    prefix = fresh_prefix()
    yield RedisNonceCache(redis_url(), prefix)
    delete_prefix(prefix)


def test_nonce_is_accepted_once(nonces: MemoryNonceCache | RedisNonceCache) -> None:
    """SET NX: the first use of a (key, nonce) wins, a repeat is refused, others are free."""

    async def scenario() -> None:
        assert await nonces.first_use("k1", "n1", 60)
        assert not await nonces.first_use("k1", "n1", 60)
        assert await nonces.first_use("k1", "n2", 60)
        assert await nonces.first_use("k2", "n1", 60)
        await nonces.close()

    asyncio.run(scenario())


def test_concurrent_uses_of_one_nonce_accept_exactly_one(
    nonces: MemoryNonceCache | RedisNonceCache,
) -> None:
    """Checks in flight together (pipelined on one connection) still let one use win."""

    async def scenario() -> list[bool]:
        firsts = await asyncio.gather(*(nonces.first_use("k", "same", 60) for _ in range(50)))
        await nonces.close()
        return list(firsts)

    assert sorted(asyncio.run(scenario())) == [False] * 49 + [True]


def test_nonce_is_forgotten_after_its_ttl(nonces: MemoryNonceCache | RedisNonceCache) -> None:
    """After the TTL the same nonce is accepted again (polled with a deadline)."""

    async def scenario() -> None:
        assert await nonces.first_use("k", "n", 1)
        assert not await nonces.first_use("k", "n", 1)
        deadline = time.monotonic() + 10
        while not await nonces.first_use("k", "n", 1):
            assert time.monotonic() < deadline, "nonce never expired"
            await asyncio.sleep(0.05)
        await nonces.close()

    asyncio.run(scenario())


def test_redis_nonce_cache_down_raises_cache_unavailable() -> None:
    """Against a closed port the nonce check fails as CacheUnavailable (the call is refused)."""
    cache = RedisNonceCache(f"redis://127.0.0.1:{free_port()}/0", fresh_prefix())
    with pytest.raises(CacheUnavailable):
        asyncio.run(cache.first_use("k", "n", 60))
