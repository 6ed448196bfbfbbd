"""Hold expiries through crashes: SIGKILL of the consumer mid-batch and of the leader
while it sweeps loses no expiry and applies none twice (docs/api.md, "Holds")."""

from __future__ import annotations

import grpc
from harness import Deployment, ServerProcess, wait_until
from harness.load import new_request_id, new_user
from reliability_support import wait_until_holding_a_batch

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

RELAY_ONLY = {"api": False, "relay": True, "consumer": False, "cache_updater": False}
# Sweep often, and hold each consumer batch a moment before its commit (a kill lands in it).
SWEEP = {"hold_sweep_interval_s": "0.2"}
COMMIT_DELAY = {"fault_consumer_commit_delay_ms": "150"}
USERS, HOLDS_PER_USER = 8, 6


def _leads(process: ServerProcess) -> bool:
    return process.metric('ledgerd_leader{lock="outbox"}') == 1


def _expiries_sent(process: ServerProcess) -> float:
    return process.metric("ledgerd_hold_expiries_sent_total")


def test_expiries_survive_kills_of_the_consumer_and_the_leader(
    deployment_on_shards: Deployment,
) -> None:
    """Holds expiring over several seconds; while the leader sweeps, SIGKILL it (the other
    contender takes over and sweeps the same holds) and SIGKILL the consumer mid-batch
    (restarted). Every hold ends EXPIRED with exactly one HOLD_EXPIRE in its account's
    journal, every frozen amount back to available, and the audit passes; on one database
    and on two shards."""
    deployment = deployment_on_shards
    api = deployment.start("api", relay=False, consumer=False)
    consumer = deployment.start("consumer", COMMIT_DELAY, api=False, relay=False)
    contenders = [deployment.start(name, SWEEP, **RELAY_ONLY) for name in ("lead-a", "lead-b")]
    users = [new_user() for _ in range(USERS)]
    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        deposits = [
            pb.ChangeBalanceRequest(
                request_id=new_request_id("d"), user_id=user, currency="USD", type=pb.DEPOSIT,
                amount="100",
            )
            for user in users
        ]  # fmt: skip
        answers = stub.ChangeBalances(pb.ChangeBalancesRequest(changes=deposits, wait=True))
        assert {a.status for a in answers.results} == {pb.APPLIED}
        holds = [
            pb.ChangeBalanceRequest(
                request_id=new_request_id("hold"), user_id=user, currency="USD", type=pb.HOLD,
                amount="1", timeout_ms=1500 + 700 * (index * USERS + number),
            )
            for index in range(HOLDS_PER_USER)
            for number, user in enumerate(users)
        ]  # fmt: skip
        answers = stub.ChangeBalances(pb.ChangeBalancesRequest(changes=holds, wait=True))
        assert {a.status for a in answers.results} == {pb.APPLIED}

        wait_until(lambda: any(_expiries_sent(p) > 0 for p in contenders), 60, "a sweep")
        (leader,) = [p for p in contenders if _leads(p)]
        leader.kill()
        wait_until_holding_a_batch(consumer)
        consumer.kill()
        consumer.start(timeout_s=60)
        (survivor,) = [p for p in contenders if p is not leader]
        wait_until(lambda: _leads(survivor), 30, "the other contender leading")
        leader.start(timeout_s=60)  # a restarted leader sweeps again once it leads

        def expired() -> int:
            states = [
                stub.GetHold(pb.GetHoldRequest(user_id=h.user_id, hold_id=h.request_id)).hold
                for h in holds
            ]
            return sum(state.state == pb.HOLD_STATE_EXPIRED for state in states)

        wait_until(lambda: expired() == len(holds), 120, "every hold expired")
        for user in users:
            entries = stub.ListJournal(
                pb.ListJournalRequest(user_id=user, currency="USD", limit=1000)
            ).entries
            expiries = [e.request_id for e in entries if e.type == pb.HOLD_EXPIRE]
            assert len(expiries) == HOLDS_PER_USER == len(set(expiries)), expiries
            last = entries[-1]
            assert (last.available_after, last.frozen_after) == ("100", "0")
    report = api.wait_settled(timeout_s=120)
    assert report["ok"], report["problems"]
    assert (report["holds"], report["open_holds"]) == (len(holds), 0)
