"""Clients that give up (deadlines, cancellations) never stop the service for others."""

from __future__ import annotations

import asyncio

import grpc
from e2e_support import change, new_user
from harness import ServerProcess

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


async def _burst_then_one_call(target: str, user: int) -> pb.ChangeResult:
    """500 ChangeBalance calls with deadlines of 5 to 50 ms, then one ordinary call.

    The spread of deadlines makes many calls give up while queued for the group
    commit, not only before they reach the server.
    """
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)

        async def impatient(index: int) -> None:
            deadline_s = (0.005, 0.02, 0.05)[index % 3]
            try:
                await stub.ChangeBalance(change(user, pb.DEPOSIT, "1"), timeout=deadline_s)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (index, exc)

        await asyncio.gather(*(impatient(i) for i in range(500)))
        answer: pb.ChangeResult = await stub.ChangeBalance(
            change(user, pb.DEPOSIT, "1", wait=True), timeout=15
        )
        return answer


def test_a_burst_of_abandoned_calls_leaves_later_changes_working(server: ServerProcess) -> None:
    """After 500 calls whose deadline passed in the group commit, a change is APPLIED, and the
    server stays healthy with every component running."""
    user = new_user()
    answer = asyncio.run(_burst_then_one_call(server.target, user))
    assert answer.status == pb.APPLIED
    with grpc.insecure_channel(server.target) as channel:
        health = pb_grpc.BalanceServiceStub(channel).HealthCheck(pb.HealthCheckRequest(), timeout=5)
    assert health.status == pb.HealthCheckResponse.SERVING
    assert health.components["component:acceptor"].startswith("ok")
    # Whatever the abandoned calls left committed is applied; the journal agrees with it.
    assert answer.balance.version == int(answer.balance.available)
