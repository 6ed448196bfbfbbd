"""Consumers scale out through the Kafka consumer group without losing or repeating a change."""

from __future__ import annotations

from decimal import Decimal

import grpc
from harness import Deployment, wait_for, wait_until
from harness.load import Load, balance_of, new_user

from ledgerd.v1 import balance_pb2_grpc as pb_grpc

PARTITIONS = 3  # of the deployment's topic (the default of LEDGERD_PARTITIONS)


def wait_for_balances(
    stub: pb_grpc.BalanceServiceStub, expected: dict[int, Decimal]
) -> dict[int, Decimal]:
    """GetBalance of each user until it equals the expectation (the cache may trail), or 30 s."""
    return wait_for(
        lambda: {user: Decimal(balance_of(stub, user).available) for user in expected},
        expected,
        30,
        "balances read by clients equal the model of the applied changes",
    )


def test_second_consumer_joins_mid_load_then_first_leaves(cluster: Deployment) -> None:
    """A consumer joins mid-load, the first leaves: every change applied once, none lost."""
    api = cluster.start("api", consumer=False)
    first = cluster.start("consumer-1", api=False, relay=False)
    users = [new_user() for _ in range(30)]
    everything = set(range(PARTITIONS))
    with Load(api.target, users, clients=6) as load:
        load.wait_acknowledged(200)
        first.wait_applied(100)  # the first consumer applies the load alone
        second = cluster.start("consumer-2", api=False, relay=False)
        wait_until(
            lambda: first.owned_partitions() and second.owned_partitions(),
            60,
            "both consumers owning partitions",
        )
        second.wait_applied(50)  # the second applies its share
        applied_by_first_before_leaving = first.metric('ledgerd_changes_total{outcome="applied"}')
        assert first.stop() == 0
        wait_until(
            lambda: second.owned_partitions() == everything,
            60,
            "the second consumer owning every partition after the first left",
        )
        second.wait_applied(100)  # and applies what the first would have
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
