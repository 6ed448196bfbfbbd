"""Errors carry google.rpc.Status details in grpc-status-details-bin, read as any gRPC client
would (grpc_status.rpc_status), and the Python client exposes them as typed fields."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import google.rpc.error_details_pb2 as error_details_pb2
import grpc
import pytest
from e2e_support import change, new_request_id, new_user, rpc_code
from google.protobuf.message import Message
from grpc_status import rpc_status
from harness import ServerProcess

from ledgerd.client import AsyncLedgerdClient, LedgerdClient, LedgerdRpcError
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

Stub = pb_grpc.BalanceServiceStub
M = TypeVar("M", bound=Message)


def failure(call: object) -> grpc.RpcError:
    assert isinstance(call, grpc.RpcError)
    return call


def detail(call: object, kind: type[M]) -> M:
    """The one detail of this type in the call's google.rpc.Status trailer."""
    status = rpc_status.from_call(failure(call))  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin trailer"
    found = [d for d in status.details if d.Is(kind.DESCRIPTOR)]
    assert len(found) == 1, f"{len(found)} {kind.__name__} details in {status}"
    unpacked = kind()
    found[0].Unpack(unpacked)
    return unpacked


def violations(call: object) -> list[tuple[str, str]]:
    bad = detail(call, error_details_pb2.BadRequest)
    return [(v.field, v.description) for v in bad.field_violations]


def test_a_change_with_three_bad_fields_names_all_three(stub: Stub, server: ServerProcess) -> None:
    """BadRequest has one violation per bad field; the message still starts with the first."""
    request = change(0, pb.DEPOSIT, "-1", currency="usd", request_id=new_request_id("three"))
    before = server.audit()
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalance(request, timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(raised.value)] == ["user_id", "currency", "amount"]
    assert failure(raised.value).details().startswith("user_id: ")  # type: ignore[attr-defined]
    info = detail(raised.value, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INVALID_FIELD", "ledgerd")
    assert sum(server.audit()["requests"].values()) == sum(before["requests"].values())


def test_a_batch_names_every_bad_item(stub: Stub) -> None:
    """Bad items at indexes 0 and 5 are both named, as changes[i].field, and nothing is stored."""
    user = new_user()
    changes = [change(user, pb.DEPOSIT, "1") for _ in range(7)]
    changes[0].amount = "0"
    changes[5].type = 0  # type: ignore[assignment]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalances(pb.ChangeBalancesRequest(changes=changes), timeout=10)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(raised.value) == [
        ("changes[0].amount", "must be greater than zero"),
        ("changes[5].type", "must be DEPOSIT, WITHDRAW, FREEZE, UNFREEZE or SPEND_FROZEN"),
    ]
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetChange(pb.GetChangeRequest(request_id=changes[1].request_id), timeout=5)
    assert rpc_code(missing.value) == grpc.StatusCode.NOT_FOUND


def test_a_batch_of_ten_thousand_bad_items_still_reaches_the_client(stub: Stub) -> None:
    """The details fit gRPC's trailer limit: the first violations, and the true count."""
    user = new_user()
    changes = [change(user, pb.DEPOSIT, "0") for _ in range(10_000)]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalances(pb.ChangeBalancesRequest(changes=changes), timeout=30)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    listed = violations(raised.value)
    assert listed[:2] == [
        ("changes[0].amount", "must be greater than zero"),
        ("changes[1].amount", "must be greater than zero"),
    ]
    info = detail(raised.value, error_details_pb2.ErrorInfo)
    assert info.metadata["field_violations"] == "10000"


def test_a_conflict_carries_error_info_with_the_request_id(stub: Stub) -> None:
    """ALREADY_EXISTS: reason REQUEST_CONFLICT, the request_id and its field as metadata."""
    user = new_user()
    taken = change(user, pb.DEPOSIT, "1", wait=True)
    stub.ChangeBalance(taken, timeout=10)
    clash = change(user, pb.DEPOSIT, "2", request_id=taken.request_id)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalances(
            pb.ChangeBalancesRequest(changes=[change(user, 1, "1"), clash]), timeout=10
        )
    assert rpc_code(raised.value) == grpc.StatusCode.ALREADY_EXISTS
    info = detail(raised.value, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("REQUEST_CONFLICT", "ledgerd")
    assert dict(info.metadata) == {
        "request_id": taken.request_id,
        "field": "changes[1].request_id",
    }


def test_an_unknown_request_is_request_not_found(stub: Stub) -> None:
    """NOT_FOUND carries reason REQUEST_NOT_FOUND and the request_id asked for."""
    request_id = new_request_id("nobody")
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetChange(pb.GetChangeRequest(request_id=request_id), timeout=5)
    info = detail(raised.value, error_details_pb2.ErrorInfo)
    assert (info.reason, dict(info.metadata)) == ("REQUEST_NOT_FOUND", {"request_id": request_id})


def test_an_undecodable_body_is_one_violation_of_request(channel: grpc.Channel) -> None:
    """Bytes that are no ChangeBalanceRequest: INVALID_ARGUMENT with field `request`."""
    call = channel.unary_unary(
        "/ledgerd.v1.BalanceService/ChangeBalance",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(b"\xff\xff\xff", timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(raised.value) == [("request", "not a valid ChangeBalance request message")]


def test_the_client_raises_typed_errors_that_are_still_rpc_errors(server: ServerProcess) -> None:
    """LedgerdClient: field_violations, reason and metadata; old `except grpc.RpcError` works."""
    user = new_user()
    with LedgerdClient(server.target) as client:
        with pytest.raises(LedgerdRpcError) as invalid:
            client.change("deposit", user, "usd", "0")
        assert isinstance(invalid.value, grpc.RpcError)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert invalid.value.field_violations == (
            ("currency", "must be 1-16 characters of A-Z 0-9"),
            ("amount", "must be greater than zero"),
        )
        assert invalid.value.message.startswith("currency: ")
        request_id = new_request_id("typed")
        client.change("deposit", user, "USD", "1", request_id=request_id)
        with pytest.raises(LedgerdRpcError) as conflict:
            client.change("deposit", user, "USD", "2", request_id=request_id)
        assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert (conflict.value.reason, conflict.value.metadata["request_id"]) == (
            "REQUEST_CONFLICT",
            request_id,
        )
        assert conflict.value.field_violations == ()


def test_the_async_client_raises_the_same_typed_errors(server: ServerProcess) -> None:
    """AsyncLedgerdClient decodes the details of grpc.aio's errors the same way."""

    async def missing() -> LedgerdRpcError:
        async with AsyncLedgerdClient(server.target) as client:
            with pytest.raises(LedgerdRpcError) as raised:
                await client.get_change(new_request_id("absent"))
            return raised.value

    error = asyncio.run(missing())
    assert (error.code(), error.reason) == (grpc.StatusCode.NOT_FOUND, "REQUEST_NOT_FOUND")
