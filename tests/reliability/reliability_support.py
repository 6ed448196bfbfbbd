"""Shared by the fault-injection scenarios: the session timeout, the exactly-once check, and
waiting for a consumer to hold a batch."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from confluent_kafka.admin import AdminClient, ConfigResource
from harness import Deployment, ServerProcess, run_services, services, wait_for, wait_until
from harness.load import Load, balance_of

from ledgerd.v1 import balance_pb2_grpc as pb_grpc

# Kafka moves a silent consumer's partitions after this long. Every kill of a consumer waits
# it out before the group moves on, so it is short: 3 s (deploy/kafka lets the broker accept
# it), or the broker's minimum if that is higher (Kafka's default minimum is 6 s).
WANTED_SESSION_TIMEOUT_MS = 3000
SWEEP_MIN_AGE_S = 4.0
PARTITIONS = 3  # of every deployment's topic (the default of LEDGERD_PARTITIONS)

# What a consumer started with fault_consumer_commit_delay_ms logs before each hold.
HOLDING = "fault injection: holding batch before commit"


@functools.cache
def session_timeout_ms(bootstrap: str) -> int:
    """WANTED_SESSION_TIMEOUT_MS, or the shortest the broker at ``bootstrap`` accepts."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker = ConfigResource(ConfigResource.Type.BROKER, "1")  # node.id of deploy/kafka
    configs = admin.describe_configs([broker])[broker].result(timeout=30)
    return max(WANTED_SESSION_TIMEOUT_MS, int(configs["group.min.session.timeout.ms"].value))


@contextmanager
def deployment_of(root: Path, *, shards: int = 1, **settings: str) -> Iterator[Deployment]:
    """A deployment for a fault scenario (``settings`` as for Deployment); afterwards its
    processes are killed and whatever the scenario stopped of the shared services is up."""
    # A short sweep age, so rows a killed process never published are sent in seconds.
    log_url = settings.get("log_url", f"kafka://{services.kafka_bootstrap()}")
    session_timeout = session_timeout_ms(log_url.removeprefix("kafka://"))
    made = Deployment(
        root,
        shards=shards,
        **{
            "kafka_session_timeout_ms": str(session_timeout),
            "relay_sweep_min_age_s": str(SWEEP_MIN_AGE_S),
            **settings,
        },
    )
    try:
        yield made
    finally:
        made.kill_all()
        run_services("up")  # whatever a scenario stopped is back for the next one


def assert_exactly_once(load: Load, api: ServerProcess, users: list[int]) -> dict[str, Any]:
    """Every acknowledged change is APPLIED or REJECTED, once; audit passes; balances
    (as clients read them) equal the model of the applied changes. Returns the audit."""
    assert len(load.acknowledged) > 100, "the load was too small to mean anything"
    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        model = load.verify(stub)
        report = api.wait_settled(timeout_s=120)
        assert report["ok"], report["problems"]
        assert report["in_flight"] == 0
        assert report["journal_entries"] == report["requests"].get("APPLIED", 0)
        expected = {user: model.available[(user, "USD")] for user in users}
        # Reads may come from the cache, which trails the store a little.
        seen = wait_for(
            lambda: {user: Decimal(balance_of(stub, user).available) for user in users},
            expected,
            30,
            "balances read by clients equal the model of the applied changes",
        )
        assert seen == expected
    return report


def wait_until_holding_a_batch(process: ServerProcess, timeout_s: float = 60.0) -> None:
    """Return just after the process logs that it holds a decided batch before its commit
    (a consumer started with fault_consumer_commit_delay_ms)."""
    seen = len(process.log_events(HOLDING))
    wait_until(
        lambda: len(process.log_events(HOLDING)) > seen,
        timeout_s,
        f"the consumer {process.data_dir.name} holding a batch",
        interval_s=0.02,  # the hold is short: act inside it
    )
