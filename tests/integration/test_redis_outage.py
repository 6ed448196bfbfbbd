"""Redis stopped during a load: clients see no errors, reads stay correct, the cache catches up."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import grpc
from conftest import Cluster, services

from ledgerd.cache.redis import RedisCache
from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import Account
from ledgerd.testing.load import Load, balance_of, new_user
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


class Reader:
    """A client reading balances in a loop, counting failed reads."""

    def __init__(self, target: str, users: list[int]) -> None:
        self.target, self.users = target, users
        self.reads = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            while not self.stop.is_set():
                for user in self.users:
                    try:
                        stub.GetBalance(
                            pb.GetBalanceRequest(user_id=user, currency="USD"), timeout=5
                        )
                        self.reads += 1
                    except grpc.RpcError as exc:
                        self.errors.append(exc.code().name)


def test_redis_outage_is_invisible_to_clients_and_the_cache_converges(cluster: Cluster) -> None:
    """Stop Redis mid-load: no client errors, reads fall back to MariaDB, then Redis matches."""
    api = cluster.start("api", consumer=False)
    cluster.start("consumer", api=False, relay=False)
    users = [new_user() for _ in range(10)]
    reader = Reader(api.target, users)
    try:
        with Load(api.target, users, clients=4) as load:
            reader.thread.start()
            time.sleep(1.5)
            services("down", "redis")
            time.sleep(3)
            reads_during_outage_start = reader.reads
            time.sleep(2)
            reads_during_outage = reader.reads - reads_during_outage_start
            services("up", "redis")
            time.sleep(2)
    finally:
        reader.stop.set()
        reader.thread.join()
        services("up", "redis")
    assert not load.errors, load.errors
    assert reader.errors == []
    assert reads_during_outage > 0, "reads stalled while Redis was down"

    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        model = load.verify(stub)
        api.wait_settled()
        expected = {user: model.available[(user, "USD")] for user in users}
        cache = RedisCache(api.env["LEDGERD_CACHE_URL"], prefix=api.env["LEDGERD_CACHE_KEY_PREFIX"])
        deadline = time.monotonic() + 30
        while True:
            cached = {u: cache.get(Account(u, "USD")) for u in users}
            in_cache = {
                u: Decimal(format_amount(b.available)) if b else None for u, b in cached.items()
            }
            if in_cache == expected or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        cache.close()
        assert in_cache == expected
        assert {u: Decimal(balance_of(stub, u).available) for u in users} == expected
