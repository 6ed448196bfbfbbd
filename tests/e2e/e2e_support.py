"""Client-side bookkeeping shared by the end-to-end tests."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import grpc

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

_ids = itertools.count()
_users = itertools.count(1_000_000)


def new_request_id(prefix: str = "t") -> str:
    return f"{prefix}-{time.time_ns()}-{next(_ids)}"


def new_user() -> int:
    """A user no other test touches."""
    return next(_users) * 7 + time.time_ns() % 7


def change(
    user: int,
    kind: int,
    amount: str,
    currency: str = "USD",
    request_id: str | None = None,
    **kw: object,
) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=request_id or new_request_id(),
        user_id=user,
        currency=currency,
        type=kind,  # type: ignore[arg-type]
        amount=amount,
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class Model:
    """Reference balances computed from the changes the server says it APPLIED."""

    available: defaultdict[tuple[int, str], Decimal]
    frozen: defaultdict[tuple[int, str], Decimal]

    @classmethod
    def empty(cls) -> Model:
        return cls(defaultdict(Decimal), defaultdict(Decimal))

    def apply(self, request: pb.ChangeBalanceRequest) -> None:
        key = (request.user_id, request.currency)
        amount = Decimal(request.amount)
        if request.type == pb.DEPOSIT:
            self.available[key] += amount
        elif request.type == pb.WITHDRAW:
            self.available[key] -= amount
        elif request.type == pb.FREEZE:
            self.available[key] -= amount
            self.frozen[key] += amount
        else:
            self.frozen[key] -= amount
            self.available[key] += amount


def final_status(
    stub: pb_grpc.BalanceServiceStub, request_id: str, timeout_s: float = 30.0
) -> pb.ChangeResult:
    """GetChange until the request is APPLIED or REJECTED."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = stub.GetChange(pb.GetChangeRequest(request_id=request_id), timeout=5)
        if result.status in (pb.APPLIED, pb.REJECTED) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def balance_of(stub: pb_grpc.BalanceServiceStub, user: int, currency: str = "USD") -> pb.Balance:
    (balance,) = stub.GetBalance(
        pb.GetBalanceRequest(user_id=user, currency=currency), timeout=5
    ).balances
    return balance


def rpc_code(call: object) -> grpc.StatusCode:
    """The status code of a failed call, for pytest.raises(grpc.RpcError) blocks."""
    assert isinstance(call, grpc.RpcError)
    code: grpc.StatusCode = call.code()  # type: ignore[attr-defined]
    return code
