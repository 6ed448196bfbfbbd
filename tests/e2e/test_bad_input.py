"""Malformed fields get INVALID_ARGUMENT naming the field, and leave nothing behind."""

from __future__ import annotations

import grpc
import pytest
from e2e_support import new_request_id, new_user, rpc_code
from harness import ServerProcess

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

Stub = pb_grpc.BalanceServiceStub

GOOD = {"user_id": 1, "currency": "USD", "type": pb.DEPOSIT, "amount": "1", "memo": ""}

CASES = [
    ("request_id", {"request_id": ""}),
    ("request_id", {"request_id": "x" * 65}),
    ("request_id", {"request_id": "has space"}),
    ("user_id", {"user_id": 0}),
    ("currency", {"currency": "usd"}),
    ("currency", {"currency": "A" * 17}),
    ("currency", {"currency": ""}),
    ("amount", {"amount": ""}),
    ("amount", {"amount": "0"}),
    ("amount", {"amount": "-1"}),
    ("amount", {"amount": "1e5"}),
    ("amount", {"amount": "NaN"}),
    ("amount", {"amount": " 1"}),
    ("amount", {"amount": "1."}),
    ("amount", {"amount": "1." + "1" * 19}),
    ("amount", {"amount": "1" * 21}),
    ("type", {"type": 0}),
    ("type", {"type": 9}),
    ("memo", {"memo": "m" * 257}),
]


def malformed(override: dict[str, object]) -> pb.ChangeBalanceRequest:
    """A good change of a new user with ``override`` applied."""
    request_id = str(override.get("request_id", new_request_id("bad")))
    fields = {**GOOD, "user_id": new_user(), **override, "request_id": request_id}
    return pb.ChangeBalanceRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "override"), CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CASES)]
)
def test_malformed_change_is_invalid_argument_naming_the_field(
    stub: Stub, field: str, override: dict[str, object]
) -> None:
    """Each malformed field is rejected by name (that nothing is written is checked once
    for all of them, below)."""
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalance(malformed(override), timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(f"{field}:")  # type: ignore[attr-defined]


def test_malformed_changes_write_no_request_row(stub: Stub, server: ServerProcess) -> None:
    """No malformed change leaves a request row in the store: one audit before all the
    cases and one after (the store is the stack's, so this runs on each stack)."""
    before = server.audit()
    for _, override in CASES:
        with pytest.raises(grpc.RpcError) as raised:
            stub.ChangeBalance(malformed(override), timeout=5)
        assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    after = server.audit()
    assert sum(after["requests"].values()) == sum(before["requests"].values())


def test_get_balance_with_user_zero_is_invalid(stub: Stub) -> None:
    """GetBalance names user_id when it is 0."""
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetBalance(pb.GetBalanceRequest(user_id=0, currency="USD"), timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("user_id:")  # type: ignore[attr-defined]


def test_list_journal_limit_over_1000_is_invalid(stub: Stub) -> None:
    """ListJournal names limit when it is above 1000."""
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListJournal(pb.ListJournalRequest(user_id=1, currency="USD", limit=1001), timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("limit:")  # type: ignore[attr-defined]


def test_get_change_with_malformed_id_is_invalid(stub: Stub) -> None:
    """GetChange names request_id when it is malformed."""
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetChange(pb.GetChangeRequest(request_id="no spaces allowed"), timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
