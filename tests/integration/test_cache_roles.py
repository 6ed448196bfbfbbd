"""The documented role split keeps the shared cache fresh, and reads never go back in time,
even while Redis restarts.

Each role runs in its own ``ledgerd serve`` process on MariaDB, Kafka and Redis.
Consumers publish committed balances to the cache feed; only the cache-updater
process writes the feed to Redis.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from cache_support import MonotonicReads, percentiles
from harness import Deployment, ServerProcess, run_services, wait_until
from harness.load import balance_of, change, new_user

from ledgerd.cache.redis import RedisCache
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

NO_ROLES = {"api": False, "relay": False, "consumer": False, "cache_updater": False}


def roles(**on: bool) -> dict[str, bool]:
    return {**NO_ROLES, **on}


def visible_everywhere(
    stubs: list[pb_grpc.BalanceServiceStub], user: int, version: int, timeout_s: float = 10.0
) -> float:
    """Seconds until GetBalance through every API shows ``version`` or newer."""
    started = time.monotonic()
    pending = list(stubs)
    while pending:
        pending = [s for s in pending if balance_of(s, user).version < version]
        if pending:
            assert time.monotonic() - started < timeout_s, f"user {user} v{version} not visible"
            time.sleep(0.002)
    return time.monotonic() - started


@pytest.fixture
def split(cluster: Deployment) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """API x2, relay, consumer x2 and the cache updater, each its own process."""
    apis = (cluster.start("api-1", **roles(api=True)), cluster.start("api-2", **roles(api=True)))
    cluster.start("relay", **roles(relay=True))
    cluster.start("consumer-1", **roles(consumer=True))
    cluster.start("consumer-2", **roles(consumer=True))
    cluster.start("cache-updater", **roles(cache_updater=True))
    yield apis


def test_role_split_every_api_shows_each_applied_version(
    split: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    """After each APPLIED answer both APIs show that version; unwaited changes follow the feed."""
    channels = [grpc.insecure_channel(api.target) for api in split]
    stubs = [pb_grpc.BalanceServiceStub(c) for c in channels]
    users = [new_user() for _ in range(6)]
    after_applied: list[float] = []
    after_accepted: list[float] = []
    errors: list[str] = []

    def client(index: int, user: int) -> None:
        version = 0
        try:
            for round_ in range(60):
                stub = stubs[(index + round_) % 2]
                if round_ % 4 == 3:
                    # Not waited on: visible once the feed reaches the cache updater.
                    stub.ChangeBalance(change(user, pb.DEPOSIT, "1", wait=False), timeout=10)
                    version += 1
                    after_accepted.append(visible_everywhere(stubs, user, version, 20.0))
                    continue
                result = stub.ChangeBalance(change(user, pb.DEPOSIT, "1", wait=True), timeout=10)
                assert result.status == pb.APPLIED, result
                version = result.balance.version
                after_applied.append(visible_everywhere(stubs, user, version))
        except (AssertionError, grpc.RpcError) as exc:
            errors.append(f"user {user}: {exc}")

    threads = [threading.Thread(target=client, args=(i, u)) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for channel in channels:
        channel.close()
    assert errors == []
    report = {
        "applied_changes": len(after_applied),
        "visible_after_applied": percentiles(after_applied),
        "unwaited_changes": len(after_accepted),
        "visible_after_accepted": percentiles(after_accepted),
    }
    print("cache freshness:", json.dumps(report))
    assert len(after_applied) == 45 * len(users)
    # The answering API wrote the cache before answering: no API lags it.
    assert max(after_applied) < 1.0, report


@pytest.mark.slow  # restarts the shared Redis
def test_reads_never_go_back_in_time_across_a_redis_restart(cluster: Deployment) -> None:
    """Writers (wait=true) and readers alternate between two API processes (which also
    consume) while Redis restarts: no read is older than an acknowledged version or a
    read completed before it began; afterwards the leader's full sync makes Redis serve."""
    apis = [cluster.start(f"api-{i}", **roles(api=True, relay=True, consumer=True)) for i in (1, 2)]
    cluster.start("cache-updater", **roles(cache_updater=True))
    users = [new_user() for _ in range(8)]
    record = MonotonicReads()
    stop = threading.Event()
    errors: list[str] = []
    channels = [grpc.insecure_channel(api.target) for api in apis]
    stubs = [pb_grpc.BalanceServiceStub(c) for c in channels]

    def writer(index: int) -> None:
        turn = itertools.count(index)
        while not stop.is_set():
            user = users[next(turn) % len(users)]
            try:
                result = stubs[next(turn) % 2].ChangeBalance(
                    change(user, pb.DEPOSIT, "1", wait=True), timeout=10
                )
            except grpc.RpcError as exc:
                errors.append(f"write: {exc.code().name}")
                continue
            if result.status == pb.APPLIED:
                record.acknowledge(user, result.balance.version)

    def reader(index: int) -> None:
        turn = itertools.count(index)
        while not stop.is_set():
            user = users[next(turn) % len(users)]
            where = next(turn) % 2
            floor = record.floor(user)
            try:
                version = balance_of(stubs[where], user).version
            except grpc.RpcError as exc:
                errors.append(f"read: {exc.code().name}")
                continue
            record.completed(user, version, floor, apis[where].target)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()

    def traffic_grows(reads: int, acknowledged: int) -> None:
        """Until the clients have done this many more reads and acknowledged writes."""
        start_reads, start_acked = record.progress
        wait_until(
            lambda: (
                record.progress[0] >= start_reads + reads
                and record.progress[1] >= start_acked + acknowledged
            ),
            60,
            f"{reads} reads and {acknowledged} acknowledged versions",
        )

    try:
        traffic_grows(reads=100, acknowledged=50)  # the cache serves before the restart
        acknowledged_before = sum(record.acknowledged.values())
        run_id_before = redis_run_id(apis[0].env["LEDGERD_CACHE_URL"])
        run_services("down", "redis")
        traffic_grows(reads=50, acknowledged=20)  # reads and writes go on without Redis
    finally:
        run_services("up", "redis")
    up_at = time.monotonic()
    try:
        prefix = apis[0].env["LEDGERD_CACHE_KEY_PREFIX"]
        cache = RedisCache(apis[0].env["LEDGERD_CACHE_URL"], prefix=prefix)
        wait_until(cache.ready, 30, "a full sync after the restart")
        served_again_at = time.monotonic()
        traffic_grows(reads=100, acknowledged=50)  # readers on the repaired cache
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for channel in channels:
            channel.close()
    misses = sum(api.metric("ledgerd_cache_not_ready_reads_total") for api in apis)
    run_id_after = redis_run_id(apis[0].env["LEDGERD_CACHE_URL"])
    print(
        "redis restart:",
        json.dumps(
            {
                "reads": record.reads,
                "acknowledged_versions": sum(record.acknowledged.values()),
                "acknowledged_before_restart": acknowledged_before,
                "not_ready_reads": misses,
                "redis_served_again_after_up_s": round(served_again_at - up_at, 2),
            }
        ),
    )
    cache.close()
    assert record.violations == [], record.violations[:20]
    assert errors == [], errors[:20]
    assert sum(record.acknowledged.values()) > acknowledged_before > 0
    assert record.reads > 100
    # The restart really happened (a new Redis instance). Whether a reader met it before the
    # full sync repaired it (not_ready_reads) depends on timing, so it is reported, not asserted.
    assert run_id_after != run_id_before, "Redis was not restarted"


def redis_run_id(url: str) -> str:
    """The identity of the running Redis instance: a new one after every restart."""
    client = redis.Redis.from_url(url)
    try:
        run_id: str = client.info("server")["run_id"]
        return run_id
    finally:
        client.close()
