"""Exchange operations under SIGKILL: transfers (from available and from frozen funds,
some refused by the destination and returned), atomic settlements, deposits,
withdrawals and freezes, holds (captured, paid to another user, released, or expired by
the leader's sweep), while API, relay and consumer processes are killed at random
moments. Once quiet, the audit finds nothing and nothing in flight, every acknowledged
call is final, every hold has ended once, and the balances clients read are the model
of the outcomes."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import grpc
import pytest
from harness import Deployment, ServerProcess, wait_for, wait_until
from harness.exchange import (
    CURRENCIES,
    WHALE_AMOUNT,
    ExchangeLoad,
    ExchangeModel,
    Operation,
    Outcomes,
    hold_returns,
    holds_of,
)
from harness.load import balance_of, change, new_user
from reliability_support import HOLDING

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

SEED = 15
# Consumers hold each batch before its commit, so that a kill often lands mid-batch.
CONSUMER = {"fault_consumer_commit_delay_ms": "100"}
KILLS_PER_PROCESS = 2
USERS = 12


@pytest.mark.timeout(1200)
def test_exchange_load_while_processes_are_killed(deployment_on_shards: Deployment) -> None:
    """Two API processes (each with a relay, one leading the sweep) and two consumers,
    each SIGKILLed twice in random order under the load, on one database and on two
    shards (where every transfer between users of two shards crosses them)."""
    deployment = deployment_on_shards
    fronts = [deployment.start(f"api-{n}", consumer=False) for n in "ab"]
    consumers = [deployment.start(f"consumer-{n}", CONSUMER, api=False, relay=False) for n in "ab"]
    users = [new_user() for _ in range(USERS)]
    whale = new_user()
    with grpc.insecure_channel(fronts[0].target) as channel:
        seeded = fund(pb_grpc.BalanceServiceStub(channel), users, whale)
    rng = random.Random(SEED)
    victims = [*fronts, *consumers] * KILLS_PER_PROCESS
    rng.shuffle(victims)
    killed: Counter[str] = Counter()
    targets = [front.target for front in fronts]
    with ExchangeLoad(targets, users, whale, clients=6, seed=SEED) as load:
        for victim in victims:
            load.wait_acknowledged(rng.randint(20, 60))
            if victim in consumers:
                soon_mid_batch(victim)
            victim.kill()
            killed[victim.data_dir.name] += 1
            victim.start(timeout_s=60)
        load.wait_acknowledged(50)  # the load goes on after the last restart
    assert not load.refused, load.refused
    assert set(killed.values()) == {KILLS_PER_PROCESS} and len(killed) == 4

    with grpc.insecure_channel(fronts[0].target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        load.retry_unanswered(stub)
        operations = seeded + load.acknowledged
        outcomes = Outcomes.read(stub, operations, timeout_s=180)  # every call final
        placed = [h for h in holds_of(operations) if outcomes.changes[h[1]].status == pb.APPLIED]
        wait_until(
            lambda: all(hold_state(stub, *h) != pb.HOLD_STATE_OPEN for h in placed),
            120,
            "every hold captured in full, released or expired",
            ignoring=(grpc.RpcError,),
            interval_s=0.5,
        )
        report = wait_quiet(fronts[0])
        accounts = [(u, c) for u in [*users, whale] for c in CURRENCIES]
        returned = hold_returns(stub, accounts)
        model = ExchangeModel().replay(operations, outcomes, returned)
        expected = {a: (model.available[a], model.frozen[a]) for a in accounts}
        # Reads may come from the cache, which trails the store a little.
        wait_for(
            lambda: {a: amounts(balance_of(stub, *a)) for a in accounts},
            expected,
            60,
            "balances read by clients equal the model of the outcomes",
        )

    # Shown with the output of a failure (or with -s).
    print(
        f"calls {len(operations)}, transient failures {dict(load.errors)}, kills"
        f" {dict(killed)}, transfers credited {model.transfers_credited}, returned"
        f" {model.transfers_returned}, refused {model.transfers_refused}, settlements"
        f" {model.settlements}, holds {len(placed)} (captures {model.captures}, paid"
        f" {model.captures_paid}, releases {model.releases}, expiries {model.expiries}),"
        f" audit {report['transfers']}"
    )
    assert model.broken_atomicity == []
    # Each hold gave its remainder back at most once (a release or the sweep's expiry).
    ended = Counter(entry.hold_id for entry in returned.values())
    assert [hold for hold, times in ended.items() if times > 1] == []
    assert model.expiries > 0 and model.captures > 0 and model.releases > 0
    # The load exercised what it is about.
    assert model.transfers_credited > 20 and model.transfers_returned > 0
    assert model.settlements > 0
    assert report["ok"], report["problems"]
    assert report["in_flight"] == 0
    assert report["transfers"]["in_flight"] == 0
    paid = model.transfers_credited + model.transfers_returned + model.captures_paid
    assert report["transfers"]["count"] == paid
    assert report["journal_entries"] == report["requests"].get("APPLIED", 0)
    for currency in CURRENCIES:
        held = sum(sum(expected[(u, currency)]) for u in [*users, whale])
        assert Decimal(report["money"][currency]["balances"]) == held
    if "shards" in report:
        assert [shard["ok"] for shard in report["shards"]] == [True, True]


def fund(stub: pb_grpc.BalanceServiceStub, users: list[int], whale: int) -> list[Operation]:
    """Deposit 500 of each currency to each user, and the most an account may hold to
    the whale (so every transfer to it is refused and returned); the deposits made."""
    deposits = [change(u, pb.DEPOSIT, "500", c) for u in users for c in CURRENCIES]
    deposits += [change(whale, pb.DEPOSIT, WHALE_AMOUNT, c) for c in CURRENCIES]
    stub.ChangeBalances(pb.ChangeBalancesRequest(changes=deposits, wait=True), timeout=30)
    return [Operation(d) for d in deposits]


def soon_mid_batch(consumer: ServerProcess) -> None:
    """Return when the consumer next holds a decided batch before its commit, or after
    a while if it holds none (its partitions may be elsewhere after a rebalance)."""
    seen = len(consumer.log_events(HOLDING))
    # If it holds none, it is killed between batches: a random moment all the same.
    with contextlib.suppress(AssertionError):
        wait_until(lambda: len(consumer.log_events(HOLDING)) > seen, 15, "", interval_s=0.02)


def wait_quiet(api: ServerProcess, timeout_s: float = 180.0) -> dict[str, Any]:
    """The audit once no request and no transfer is in flight (the last one read if the
    deadline passes: the caller asserts on it)."""
    last: list[dict[str, Any]] = []

    def quiet() -> bool:
        last[:] = [api.audit()]
        return last[0]["in_flight"] == 0 and last[0]["transfers"]["in_flight"] == 0

    with contextlib.suppress(AssertionError):
        wait_until(quiet, timeout_s, "nothing in flight", interval_s=0.5)
    return last[0]


def amounts(balance: pb.Balance) -> tuple[Decimal, Decimal]:
    return Decimal(balance.available), Decimal(balance.frozen)


def hold_state(stub: pb_grpc.BalanceServiceStub, holder: int, hold_id: str) -> int:
    request = pb.GetHoldRequest(user_id=holder, hold_id=hold_id)
    return int(stub.GetHold(request, timeout=5).hold.state)
