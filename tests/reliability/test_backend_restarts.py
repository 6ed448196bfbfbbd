"""Scenarios 3, 4 and 5: Kafka, MariaDB and Redis go away during a load and come back."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import grpc
from harness import Deployment, ServerProcess, run_services, wait_for, wait_until
from harness.load import Load, balance_of, new_user
from private_kafka import PrivateKafka, private_kafka
from reliability_support import assert_exactly_once, deployment_of

from ledgerd.cache.redis import RedisCache
from ledgerd.domain.model import Account
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


def test_kafka_restart_during_load(tmp_path: Path) -> None:
    """Restart the broker mid-load: acceptance goes on, and everything is applied once after.
    (A private broker of the same jars and configuration: see private_kafka.)"""
    with (
        private_kafka(tmp_path / "kafka") as broker,
        deployment_of(tmp_path, log_url=f"kafka://{broker.bootstrap}") as deployment,
    ):
        kafka_restart_during_load(deployment, broker)


def kafka_restart_during_load(deployment: Deployment, broker: PrivateKafka) -> None:
    api = deployment.start("api", consumer=False)
    consumer = deployment.start("consumer", api=False, relay=False)
    users = [new_user() for _ in range(20)]
    with Load(api.target, users, clients=6) as load:
        load.wait_acknowledged(100)
        broker.stop()
        try:
            load.wait_acknowledged(100)  # acceptance goes on without the broker
            # The API still does its role: SERVING, with the log shown degraded; the
            # consumer-only process cannot, and says so on /readyz.
            api_health = wait_until(
                lambda: _log_degraded(api_health_check(api)), 30, "API health showing log degraded"
            )
            assert api_health.status == pb.HealthCheckResponse.SERVING, api_health
            wait_until(lambda: _probe_status(consumer, "/readyz") == 503, 30, "consumer not ready")
            assert _probe_status(consumer, "/healthz") == 200  # alive: nothing to restart
        finally:
            broker.start()
        consumer.wait_applied(100, timeout_s=120)  # publication and consumption resumed
    assert not load.errors, load.errors
    assert_exactly_once(load, api, users)


def api_health_check(api: ServerProcess) -> pb.HealthCheckResponse:
    with grpc.insecure_channel(api.target) as channel:
        answer: pb.HealthCheckResponse = pb_grpc.BalanceServiceStub(channel).HealthCheck(
            pb.HealthCheckRequest(), timeout=10
        )
        return answer


def _log_degraded(health: pb.HealthCheckResponse) -> pb.HealthCheckResponse | None:
    return health if health.components["log"].startswith("degraded") else None


def _probe_status(process: ServerProcess, path: str) -> int:
    url = f"http://127.0.0.1:{process.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_mariadb_restart_during_load(deployment: Deployment) -> None:
    """Restart MariaDB mid-load: clients get UNAVAILABLE meanwhile, nothing acknowledged is lost."""
    api = deployment.start("api", consumer=False)
    consumer = deployment.start("consumer", api=False, relay=False)
    users = [new_user() for _ in range(20)]
    with Load(api.target, users, clients=6) as load:
        load.wait_acknowledged(100)
        run_services("down", "mariadb")
        load.wait_failed(10)  # clients see the outage
        run_services("up", "mariadb")
        load.wait_acknowledged(100, timeout_s=120)  # acceptance is back
        consumer.wait_applied(100, timeout_s=120)  # and so is the consumer
    assert load.errors.get("UNAVAILABLE", 0) > 0, "the outage was not visible to clients"
    assert set(load.errors) == {"UNAVAILABLE"}, load.errors
    assert_exactly_once(load, api, users)


class Reader:
    """A client reading balances in a loop, recording failed reads."""

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


def test_redis_stopped_during_load(deployment: Deployment) -> None:
    """Stop Redis mid-load: no client errors, reads fall back to MariaDB, then Redis matches."""
    api = deployment.start("api", consumer=False)
    consumer = deployment.start("consumer", api=False, relay=False)
    users = [new_user() for _ in range(10)]
    reader = Reader(api.target, users)
    try:
        with Load(api.target, users, clients=4) as load:
            reader.thread.start()
            load.wait_acknowledged(100)
            wait_until(lambda: reader.reads >= len(users), 30, "a round of reads")
            run_services("down", "redis")
            load.wait_acknowledged(100)  # changes go on without the cache
            reads_before = reader.reads
            # Reads fall back to MariaDB: another two rounds of them while Redis is down.
            wait_until(
                lambda: reader.reads >= reads_before + 2 * len(users),
                30,
                "reads while Redis is down",
            )
            reads_during_outage = reader.reads - reads_before
            run_services("up", "redis")
            load.wait_acknowledged(100)
            consumer.wait_applied(100)  # changes go on being applied with Redis back
    finally:
        reader.stop.set()
        reader.thread.join()
    assert not load.errors, load.errors
    assert reader.errors == []
    assert reads_during_outage > 0, "reads stalled while Redis was down"
    assert_exactly_once(load, api, users)

    # Redis holds what MariaDB holds again: same version of every account.
    cache = RedisCache(api.env["LEDGERD_CACHE_URL"], prefix=api.env["LEDGERD_CACHE_KEY_PREFIX"])
    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        stored = {u: balance_of(stub, u).version for u in users}
    try:
        cached = wait_for(
            lambda: {
                u: (b.version if (b := cache.get(Account(u, "USD"))) else None) for u in users
            },
            stored,
            30,
            "Redis holding the version MariaDB holds of every account",
        )
    finally:
        cache.close()
    assert cached == stored
