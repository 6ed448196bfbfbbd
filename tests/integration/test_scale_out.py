"""Consumers scale out through the Kafka consumer group without losing or repeating a change."""

from __future__ import annotations

import time
from decimal import Decimal

import grpc
from harness import Deployment
from harness.load import Load, balance_of, new_user

from ledgerd.v1 import balance_pb2_grpc as pb_grpc


def wait_for_balances(
    stub: pb_grpc.BalanceServiceStub, expected: dict[int, Decimal]
) -> dict[int, Decimal]:
    """GetBalance of each user until it equals the expectation (the cache may trail), or 30 s."""
    deadline = time.monotonic() + 30
    while True:
        seen = {user: Decimal(balance_of(stub, user).available) for user in expected}
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def test_second_consumer_joins_mid_load_then_first_leaves(cluster: Deployment) -> None:
    """A consumer joins mid-load, the first leaves: every change applied once, none lost."""
    api = cluster.start("api", consumer=False)
    first = cluster.start("consumer-1", api=False, relay=False)
    users = [new_user() for _ in range(30)]
    with Load(api.target, users, clients=6) as load:
        time.sleep(2)
        second = cluster.start("consumer-2", api=False, relay=False)
        time.sleep(4)
        applied_by_first_before_leaving = first.metric('ledgerd_changes_total{outcome="applied"}')
        assert first.stop() == 0
        time.sleep(3)
    assert len(load.acknowledged) > 200
    assert not load.errors, load.errors

    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        model = load.verify(stub)
        report = api.wait_settled()
        expected = {user: model.available[(user, "USD")] for user in users}
        assert wait_for_balances(stub, expected) == expected
    assert report["ok"], report["problems"]
    assert report["in_flight"] == 0
    assert applied_by_first_before_leaving > 0
    assert second.metric('ledgerd_changes_total{outcome="applied"}') > 0
