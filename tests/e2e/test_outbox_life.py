"""The outbox keeps a row only until it has an outcome: the journal and the rejection
records answer for it afterwards, on every stack."""

from __future__ import annotations

from pathlib import Path

import grpc
from e2e_support import stack_env
from harness import ServerProcess, wait_until

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

SWEEP_AGE_S = "1"


def change(request_id: str, change_type: int, amount: str) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=request_id, user_id=424242, currency="USD", type=change_type, amount=amount,
        wait=True,
    )  # fmt: skip


def test_finished_rows_leave_the_outbox_and_their_answers_stay(stack: str, tmp_path: Path) -> None:
    """After the sweep age, the sweep deletes the outbox rows of an applied and a rejected
    change; GetChange still answers each (with the balance after the applied one), a
    retry is a duplicate with the same answer, and the same id with other fields is
    ALREADY_EXISTS."""
    deployment = stack_env(stack)
    env = {**deployment, "LEDGERD_RELAY_SWEEP_MIN_AGE_S": SWEEP_AGE_S}
    server = ServerProcess(tmp_path / "ledgerd", env).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            applied = stub.ChangeBalance(change("life-dep", pb.DEPOSIT, "5"), timeout=30)
            rejected = stub.ChangeBalance(change("life-wd", pb.WITHDRAW, "9"), timeout=30)
            assert (applied.status, rejected.status) == (pb.APPLIED, pb.REJECTED)

            def outbox_emptied() -> bool:
                return sum(server.audit()["outbox_rows"].values()) == 0

            wait_until(outbox_emptied, 60, "the sweep deleting the finished outbox rows")
            again = stub.GetChange(pb.GetChangeRequest(request_id="life-dep"), timeout=10)
            assert (again.status, again.balance.available, again.balance.version) == (
                pb.APPLIED,
                "5",
                1,
            )
            refused = stub.GetChange(pb.GetChangeRequest(request_id="life-wd"), timeout=10)
            assert (refused.status, refused.reject_reason) == (
                pb.REJECTED,
                pb.INSUFFICIENT_AVAILABLE,
            )
            retry = stub.ChangeBalance(change("life-wd", pb.WITHDRAW, "9"), timeout=30)
            assert (retry.status, retry.duplicate) == (pb.REJECTED, True)
            try:
                stub.ChangeBalance(change("life-wd", pb.WITHDRAW, "1"), timeout=30)
                raise AssertionError("a changed retry was accepted")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.ALREADY_EXISTS
        report = server.audit()
        assert report["ok"], report["problems"]
        assert report["requests"] == {"APPLIED": 1, "REJECTED": 1}
    finally:
        server.stop()
