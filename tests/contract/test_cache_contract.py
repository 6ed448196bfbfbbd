"""The BalanceCache and NonceCache contracts, run against memory and Redis.

Each Redis test uses a key prefix of its own. Losing Redis's state is simulated
with SCRIPT FLUSH: like a restart, it empties the script cache, which is what
the readiness rule rests on (DEBUG RELOAD is disabled on Debian's Redis, and
FLUSHALL would wipe other tests' keys).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from harness import free_port, services
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerd.api.nonces import MemoryNonceCache, RedisNonceCache
from ledgerd.cache.base import BalanceCache
from ledgerd.cache.memory import MemoryCache
from ledgerd.cache.redis import RedisCache
from ledgerd.domain.model import Account, Balance
from ledgerd.errors import CacheUnavailable

_users = itertools.count(1)


def balance(user_id: int, version: int, available: int = 0) -> Balance:
    return Balance(user_id, "USD", available, 0, version)


def fresh_prefix() -> str:
    return f"ledgerd-contract-{uuid.uuid4().hex[:10]}:"


def delete_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(services.redis_url())
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


def lose_state() -> None:
    """What a Redis restart does to the script cache (the data may come back older)."""
    client = redis.Redis.from_url(services.redis_url())
    try:
        client.script_flush("SYNC")
    finally:
        client.close()


def vouch(cache: BalanceCache) -> None:
    """An empty full sync: the cache serves reads."""
    sync = cache.begin_full_sync()
    try:
        sync.complete()
    finally:
        sync.close()


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[BalanceCache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    prefix = fresh_prefix()
    backend = RedisCache(services.redis_url(), prefix=prefix)
    vouch(backend)
    yield backend
    backend.close()
    delete_prefix(prefix)


@pytest.fixture
def redis_cache() -> Iterator[RedisCache]:
    prefix = fresh_prefix()
    backend = RedisCache(services.redis_url(), prefix=prefix)
    yield backend
    backend.close()
    delete_prefix(prefix)


# -- last write wins ---------------------------------------------------------
def test_get_of_an_absent_account_is_none(cache: BalanceCache) -> None:
    """An account never put reads as not cached."""
    assert cache.get(Account(next(_users), "USD")) is None


def test_newer_version_replaces_the_cached_balance(cache: BalanceCache) -> None:
    """A put with a higher version replaces the cached balance, amounts included."""
    user = next(_users)
    cache.put_many([balance(user, 1, 10)])
    cache.put_many([balance(user, 2, 20)])
    assert cache.get(Account(user, "USD")) == balance(user, 2, 20)


def test_older_version_never_overwrites_a_newer_one(cache: BalanceCache) -> None:
    """A late put of a lower or equal version leaves the newer cached balance."""
    user = next(_users)
    cache.put_many([balance(user, 5, 50)])
    cache.put_many([balance(user, 4, 40)])
    cache.put_many([balance(user, 5, 99)])
    assert cache.get(Account(user, "USD")) == balance(user, 5, 50)


def test_newest_version_wins_within_one_batch(cache: BalanceCache) -> None:
    """Out-of-order versions of one account in one batch leave the highest version."""
    user = next(_users)
    cache.put_many([balance(user, 2, 2), balance(user, 3, 3), balance(user, 1, 1)])
    assert cache.get(Account(user, "USD")) == balance(user, 3, 3)


def test_accounts_are_independent(cache: BalanceCache) -> None:
    """Currencies of one user and different users are separate entries."""
    user = next(_users)
    cache.put_many([balance(user, 3), Balance(user, "EUR", 7, 1, 1), balance(user + 1, 9)])
    assert cache.get(Account(user, "USD")) == balance(user, 3)
    assert cache.get(Account(user, "EUR")) == Balance(user, "EUR", 7, 1, 1)


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
        cache.put_many([balance(user, v, v) for v in versions])
    highest = max(v for versions in batches for v in versions)
    assert cache.get(Account(user, "USD")) == balance(user, highest, highest)


# -- readiness ---------------------------------------------------------------
def test_memory_cache_is_always_ready() -> None:
    """Process memory cannot come back older than it was, so it always serves reads."""
    cache = MemoryCache()
    assert cache.ready()
    cache.put_many([balance(1, 1)])
    assert cache.get(Account(1, "USD")) == balance(1, 1)


def test_redis_serves_no_reads_before_a_full_sync(redis_cache: RedisCache) -> None:
    """A Redis no full sync has vouched for reads as a miss, though it holds the entry."""
    redis_cache.put_many([balance(1, 1)])
    assert not redis_cache.ready()
    assert redis_cache.get(Account(1, "USD")) is None
    vouch(redis_cache)
    assert redis_cache.ready()
    assert redis_cache.get(Account(1, "USD")) == balance(1, 1)


def test_redis_after_losing_its_state_reads_as_a_miss_until_a_full_sync(
    redis_cache: RedisCache,
) -> None:
    """After a restart (script cache flushed) reads miss; writes go on; a full sync restores."""
    user = next(_users)
    vouch(redis_cache)
    redis_cache.put_many([balance(user, 1)])
    lose_state()
    assert redis_cache.get(Account(user, "USD")) is None
    assert not redis_cache.ready()
    redis_cache.put_many([balance(user, 2)])  # last write wins still works meanwhile
    assert redis_cache.get(Account(user, "USD")) is None
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(user, 3, 3)])
    sync.complete()
    sync.close()
    assert redis_cache.get(Account(user, "USD")) == balance(user, 3, 3)


def test_full_sync_writes_are_last_write_wins(redis_cache: RedisCache) -> None:
    """A full sync carrying an older version than the cache holds does not move it back."""
    user = next(_users)
    redis_cache.put_many([balance(user, 7, 7)])
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(user, 6, 6)])
    sync.complete()
    sync.close()
    assert redis_cache.get(Account(user, "USD")) == balance(user, 7, 7)


def test_full_sync_whose_connection_broke_never_makes_redis_ready(
    redis_cache: RedisCache,
) -> None:
    """A sync cut off mid-way (as by a restart) fails instead of reconnecting and vouching."""
    lose_state()
    sync = redis_cache.begin_full_sync()
    sync.put_many([balance(next(_users), 1)])
    admin = redis.Redis.from_url(services.redis_url())
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
        cache.put_many([balance(1, 1)])
    assert time.monotonic() - started < 0.1
    with pytest.raises(CacheUnavailable):
        cache.ready()
    with pytest.raises(CacheUnavailable):
        cache.begin_full_sync()
    cache.close()


# -- nonces ------------------------------------------------------------------
@pytest.fixture(params=["memory", "redis"])
def nonces(request: pytest.FixtureRequest) -> Iterator[MemoryNonceCache | RedisNonceCache]:
    if request.param == "memory":
        yield MemoryNonceCache()
        return
    prefix = fresh_prefix()
    yield RedisNonceCache(services.redis_url(), prefix)
    delete_prefix(prefix)


def test_nonce_is_accepted_once(nonces: MemoryNonceCache | RedisNonceCache) -> None:
    """SET NX: the first use of a (key, nonce) wins, a repeat is refused, others are free."""
    assert nonces.first_use("k1", "n1", 60)
    assert not nonces.first_use("k1", "n1", 60)
    assert nonces.first_use("k1", "n2", 60)
    assert nonces.first_use("k2", "n1", 60)


def test_nonce_is_forgotten_after_its_ttl(nonces: MemoryNonceCache | RedisNonceCache) -> None:
    """After the TTL the same nonce is accepted again (polled with a deadline)."""
    assert nonces.first_use("k", "n", 1)
    assert not nonces.first_use("k", "n", 1)
    deadline = time.monotonic() + 10
    while not nonces.first_use("k", "n", 1):
        assert time.monotonic() < deadline, "nonce never expired"
        time.sleep(0.05)


def test_redis_nonce_cache_down_raises_cache_unavailable() -> None:
    """Against a closed port the nonce check fails as CacheUnavailable (the call is refused)."""
    cache = RedisNonceCache(f"redis://127.0.0.1:{free_port()}/0", fresh_prefix())
    with pytest.raises(CacheUnavailable):
        cache.first_use("k", "n", 60)
