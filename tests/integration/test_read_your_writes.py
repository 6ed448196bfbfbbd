"""Read your writes through any API process: after ChangeBalance(wait=true) answered
APPLIED through one API process, GetBalance through every API process returns that
version or a later one.

Three API-only processes share Redis (served by the async, pipelined reader) and
MariaDB; one more process relays, consumes and runs the cache updater. Writers of
several accounts interleave across the APIs while readers keep many reads in flight,
so reads are batched into shared pipelines and store queries, and untouched accounts
are read first so that negative entries exist before the first change.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator

import grpc
import pytest
from cache_support import MonotonicReads
from harness import Deployment, ServerProcess, wait_until
from harness.load import balance_of, change, new_user

from ledgerd.cache.redis import RedisCache
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

API_PROCESSES = 3
ACCOUNTS = 6
ROUNDS = 25  # applied changes per account
READERS = 4


def reads_metric(api: ServerProcess, result: str) -> float:
    return api.metric(f'ledgerd_cache_reads_total{{result="{result}"}}')


@pytest.fixture
def apis(cluster: Deployment) -> Iterator[list[ServerProcess]]:
    """Three API-only processes; a fourth relays, consumes and updates the cache."""
    no_api = {"api": False, "relay": True, "consumer": True, "cache_updater": True}
    backend = cluster.start("backend", **no_api)
    only_api = {"api": True, "relay": False, "consumer": False, "cache_updater": False}
    started = [cluster.start(f"api-{i}", **only_api) for i in range(1, API_PROCESSES + 1)]
    cache = RedisCache(
        backend.env["LEDGERD_CACHE_URL"], prefix=backend.env["LEDGERD_CACHE_KEY_PREFIX"]
    )
    try:
        # Reads are served from Redis only once a full sync vouched for it.
        wait_until(cache.ready, 60, "the first full sync")
    finally:
        cache.close()
    yield started


def test_applied_version_is_read_through_every_api_process(apis: list[ServerProcess]) -> None:
    """Each APPLIED answer through API i is followed by reads through every API (i's
    neighbours first, then i itself) that all return that version or newer, while other
    accounts' writers and background readers interleave; no read anywhere goes back in time."""
    channels = [grpc.insecure_channel(api.target) for api in apis]
    stubs = [pb_grpc.BalanceServiceStub(c) for c in channels]
    users = [new_user() for _ in range(ACCOUNTS)]
    record = MonotonicReads()
    stale: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def read(user: int, where: int) -> int:
        floor = record.floor(user)
        version = balance_of(stubs[where], user).version
        record.completed(user, version, floor, apis[where].target)
        return version

    def writer(index: int, user: int) -> None:
        try:
            for where in range(API_PROCESSES):  # untouched: negative entries everywhere
                assert read(user, where) == 0
            for round_ in range(ROUNDS):
                at = (index + round_) % API_PROCESSES
                result = stubs[at].ChangeBalance(
                    change(user, pb.DEPOSIT, "1", wait=True), timeout=15
                )
                assert result.status == pb.APPLIED, result
                applied = result.balance.version
                record.acknowledge(user, applied)
                order = [(at + step) % API_PROCESSES for step in range(1, API_PROCESSES + 1)]
                for where in order:  # the other APIs first, the answering one last
                    version = read(user, where)
                    if version < applied:
                        stale.append(
                            f"user {user}: APPLIED v{applied} via api-{at + 1},"
                            f" then read v{version} via api-{where + 1}"
                        )
        except (AssertionError, grpc.RpcError) as exc:
            errors.append(f"writer {user}: {exc}")

    def reader(index: int) -> None:
        turn = itertools.count(index)
        while not stop.is_set():
            try:
                read(users[next(turn) % ACCOUNTS], next(turn) % API_PROCESSES)
            except grpc.RpcError as exc:
                errors.append(f"reader: {exc.code().name}")

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    writers = [threading.Thread(target=writer, args=(i, u)) for i, u in enumerate(users)]
    hits_before = sum(reads_metric(api, "hit") for api in apis)
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    for channel in channels:
        channel.close()
    counts = {
        result: sum(reads_metric(api, result) for api in apis)
        for result in ("hit", "negative", "miss")
    }
    print("read your writes:", json.dumps({"reads": record.reads, **counts}))
    assert errors == [], errors[:20]
    assert stale == [], stale[:20]
    assert record.violations == [], record.violations[:20]
    assert dict(record.acknowledged) == dict.fromkeys(users, ROUNDS)
    # The reads came from Redis (the path under test), not only from the store.
    assert counts["hit"] > hits_before
    assert counts["negative"] > 0
