"""Reads never go back in time across processes sharing a Redis (ledgerd.cache.fence).

Two API processes' read paths (``BalanceReads`` with their own ``RedisCache`` and fence)
and the cache-sync leader (``CacheUpdater``, stepped by hand) over one embedded store,
against a real Redis: the shared one, or a private one for what the shared one must not
go through (a full memory, an eviction policy, a restart). Changes are applied in burst
mode; nothing feeds Redis but the answers' write-backs and the leader's full syncs, so
Redis lags the store the way a backed-off cache feed leaves it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from component_support import Rig
from harness import free_port, services
from harness.private_redis import private_redis

from ledgerd.cache.fence import CacheFence
from ledgerd.cache.redis import RedisCache
from ledgerd.cache.updater import CacheUpdater
from ledgerd.constants import REDIS_ABSENT_COUNT_KEY, REDIS_FULL_SYNC_KEY, REDIS_SERVING_KEY
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeType
from ledgerd.reads import AnswerWriteBack, BalanceReads
from ledgerd.store.scan import iter_balances

ACCOUNT = Account(7, "USD")
LEASE_S = 1.0
MARGIN_S = 0.2


def deposit(rig: Rig, request_id: str) -> None:
    rig.accept([ChangeRequest(request_id, ACCOUNT.user_id, "USD", ChangeType.DEPOSIT, SCALE)])
    rig.relay(sweep_min_age_s=0.0).run_until_idle()
    consumer = rig.consumer()
    consumer.run_until_idle()
    consumer.close()


def version(rig: Rig) -> int:
    return rig.store.load_balances([ACCOUNT])[ACCOUNT].version


class ApiProcess:
    """One API process's read path: its own Redis connections and fence."""

    def __init__(self, rig: Rig, url: str, prefix: str) -> None:
        self.cache = RedisCache(url, prefix=prefix, timeout_s=0.3)
        self.fence = CacheFence(rig.store, margin_s=MARGIN_S)
        self.write_back = AnswerWriteBack(rig.store, self.cache, self.fence)
        self._store = rig.store

    def read(self) -> tuple[Balance, float]:
        """GetBalance of ACCOUNT on a fresh loop: the answer, and the seconds it took."""

        async def once() -> Balance:
            reads = BalanceReads(self._store, self.cache, self.write_back)
            try:
                return await reads.get(ACCOUNT)
            finally:
                await reads.close()

        started = time.monotonic()
        answer = asyncio.run(once())
        return answer, time.monotonic() - started

    def answer_applied(self) -> int:
        """What answering a change APPLIED does (``LedgerService``): write the account's
        current balance back, wait if told to; the version answered."""
        began = self.fence.now()
        answered = self._store.load_balances([ACCOUNT])[ACCOUNT].version
        time.sleep(self.write_back.publish_current([ACCOUNT], began))
        return answered

    def close(self) -> None:
        self.cache.close()


def leader(rig: Rig, cache: RedisCache) -> CacheUpdater:
    return CacheUpdater(
        cache,
        rig.log,
        topic="feed",
        group_id="feed-updaters",
        full_sync_source=lambda: iter_balances(rig.store),
        fence=CacheFence(rig.store, margin_s=MARGIN_S),
        lease_ttl_s=LEASE_S,
    )


def drop_keys(prefix: str) -> None:
    """Every key these tests make under ``prefix`` (what FLUSHDB does to them); named, not
    scanned for: the shared Redis may hold millions of other keys."""
    admin = redis.Redis.from_url(services.redis_url())
    try:
        admin.delete(
            RedisCache(services.redis_url(), prefix=prefix).balance_key(ACCOUNT),
            *(prefix + key for key in (REDIS_SERVING_KEY, REDIS_FULL_SYNC_KEY,
                                       REDIS_ABSENT_COUNT_KEY)),
        )  # fmt: skip
    finally:
        admin.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    made = f"ledgerd-fence-{uuid.uuid4().hex[:10]}:"
    yield made
    drop_keys(made)


def test_an_answer_the_shared_cache_missed_stops_it_serving_until_repaired(
    rig: Rig, prefix: str
) -> None:
    """Process A cannot reach Redis (a partition, or its breaker open) and answers v2 from the
    store while Redis, which process B reads, still holds v1. A answers only after raising the
    fence and waiting out the lease; B then reads v2 (Redis serves no read until the leader's
    next full sync, which brings v2). Before the fence, B read v1 after A had answered v2."""
    deposit(rig, "d-1")
    serving = RedisCache(services.redis_url(), prefix=prefix)
    sync_leader = leader(rig, serving)
    assert sync_leader.full_sync_once()  # Redis holds v1, under a lease
    b = ApiProcess(rig, services.redis_url(), prefix)
    a = ApiProcess(rig, f"redis://127.0.0.1:{free_port()}/0", prefix)  # cut off from Redis
    try:
        assert b.read()[0].version == 1
        deposit(rig, "d-2")
        answered, took_s = a.read()
        assert answered.version == 2
        assert took_s >= MARGIN_S  # it waited for the lease granted before its raise
        assert b.read()[0].version >= 2
        sync_leader.full_sync_once()  # the repair: a full sync for the new generation
        assert serving.get(ACCOUNT) == answered  # served from Redis again, at v2
    finally:
        a.close()
        b.close()
        sync_leader.close()
        serving.close()


def test_the_leader_renews_no_lease_for_a_generation_a_raise_ended(rig: Rig, prefix: str) -> None:
    """A raise between two renewals: the next renewal is refused, so Redis stops serving when
    the lease runs out and serves again only after a full sync for the new generation."""
    deposit(rig, "d-1")
    serving = RedisCache(services.redis_url(), prefix=prefix)
    sync_leader = leader(rig, serving)
    syncs: list[int] = []
    inner = sync_leader._full_sync

    def counted(lifeline: object) -> bool:
        syncs.append(1)
        return inner(lifeline)  # type: ignore[arg-type]

    sync_leader._full_sync = counted  # type: ignore[method-assign]
    try:
        assert sync_leader.full_sync_once()
        assert not sync_leader.full_sync_once()  # a renewal only
        CacheFence(rig.store).raise_after(time.monotonic())
        assert sync_leader.full_sync_once()  # the generation moved: a full sync, then a lease
        assert len(syncs) == 2
        assert serving.get(ACCOUNT) is not None
    finally:
        sync_leader.close()
        serving.close()


def test_a_full_redis_stops_serving_reads(rig: Rig, tmp_path: Path) -> None:
    """A Redis at maxmemory with noeviction refuses the answer's write-back: the answering
    process raises the fence, the leader's repair fails on the same refusal, so Redis
    serves no read (it kept serving the old version before the fence, and stayed "ready")."""
    with private_redis(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction") as r:
        deposit(rig, "d-1")
        serving = RedisCache(r.url, prefix="p:")
        sync_leader = leader(rig, serving)
        assert sync_leader.full_sync_once()
        a = ApiProcess(rig, r.url, "p:")
        b = ApiProcess(rig, r.url, "p:")
        admin = r.admin()
        try:
            assert b.read()[0].version == 1
            filler = "x" * 10_000
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                for number in range(10_000):
                    admin.set(f"filler:{number}", filler)
            deposit(rig, "d-2")
            assert a.answer_applied() == 2  # its write-back is refused: it fences
            assert not sync_leader.full_sync_once()  # the repair cannot write either
            assert b.read()[0].version == 2
            assert serving.get(ACCOUNT) is None  # no lease: Redis serves nothing
        finally:
            admin.close()
            a.close()
            b.close()
            sync_leader.close()
            serving.close()


def test_redis_that_may_evict_balances_gets_no_lease(rig: Rig, tmp_path: Path) -> None:
    """With an allkeys-* eviction policy a real balance may vanish and be recreated older by
    a write in flight, so the leader grants no lease (and reports itself unhealthy)."""
    with private_redis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru") as r:
        deposit(rig, "d-1")
        serving = RedisCache(r.url, prefix="p:")
        sync_leader = leader(rig, serving)
        try:
            assert serving.eviction_risk() is not None
            sync_leader.full_sync_once()
            assert serving.get(ACCOUNT) is None
            assert not sync_leader.healthy
            r.admin().config_set("maxmemory-policy", "volatile-lru")
            sync_leader.full_sync_once()  # no lease to renew: a full sync is wanted first
            sync_leader.full_sync_once()
            assert serving.get(ACCOUNT) is not None
            assert sync_leader.healthy
        finally:
            sync_leader.close()
            serving.close()


def test_a_redis_restart_with_an_older_snapshot_never_serves_it(rig: Rig, tmp_path: Path) -> None:
    """Redis saved v1, answered v2 (written back), then crashed and came back with the v1
    snapshot; process A answered v3 while it was down (the fence), and B never reads below
    v3: not from the restored snapshot (no script: not ready), not after the leader's repair."""
    with private_redis(tmp_path) as r:
        deposit(rig, "d-1")
        serving = RedisCache(r.url, prefix="p:")
        sync_leader = leader(rig, serving)
        a = ApiProcess(rig, r.url, "p:")
        b = ApiProcess(rig, r.url, "p:")
        try:
            assert sync_leader.full_sync_once()
            admin = r.admin()
            admin.save()  # the snapshot holds v1 (and a lease that will have run out)
            admin.close()
            deposit(rig, "d-2")
            assert serving.get(ACCOUNT) is not None
            r.kill()
            deposit(rig, "d-3")
            assert a.read()[0].version == 3  # Redis down: A fences, waits, answers
            r.start()
            assert b.read()[0].version == 3
            sync_leader.full_sync_once()
            assert b.read()[0].version == 3
            assert serving.get(ACCOUNT) == Balance(7, "USD", 3 * SCALE, 0, 3)
        finally:
            a.close()
            b.close()
            sync_leader.close()
            serving.close()


def test_a_write_back_delayed_past_a_flush_is_never_served(rig: Rig, prefix: str) -> None:
    """Found by the simulation (seed 1355, there with a single DEL): a write-back of v1, read
    as current and then delayed in flight, lands after Redis lost its keys (FLUSHDB) while
    v2 has been answered. The lease went with the keys and is not renewed, so nothing reads
    v1; the leader's full sync then raises it to v2 before a new lease."""
    deposit(rig, "d-1")
    serving = RedisCache(services.redis_url(), prefix=prefix)
    sync_leader = leader(rig, serving)
    b = ApiProcess(rig, services.redis_url(), prefix)
    try:
        assert sync_leader.full_sync_once()
        stale = rig.store.load_balances([ACCOUNT])[ACCOUNT]  # read as current: v1
        deposit(rig, "d-2")
        assert b.answer_applied() == 2
        drop_keys(prefix)  # what FLUSHDB does to this prefix
        serving.put_many([stale], create=True)  # the delayed write-back lands
        assert not sync_leader.full_sync_once()  # a renewal only: refused, a sync is wanted
        assert b.read()[0].version == 2
        assert sync_leader.full_sync_once()
        assert serving.get(ACCOUNT) == Balance(7, "USD", 2 * SCALE, 0, 2)
    finally:
        b.close()
        sync_leader.close()
        serving.close()
