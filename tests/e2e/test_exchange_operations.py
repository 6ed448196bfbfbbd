"""Spending frozen funds, atomic batches and transfers against a real server, on every stack
(the sharded one moves funds between users of different databases)."""

from __future__ import annotations

import grpc
import pytest
from e2e_support import balance_of, change, new_request_id, new_user, rpc_code

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

Stub = pb_grpc.BalanceServiceStub


def funded(stub: Stub, amount: str = "100", currency: str = "USD") -> int:
    user = new_user()
    result = stub.ChangeBalance(change(user, pb.DEPOSIT, amount, currency), timeout=10)
    assert result.status in (pb.PENDING, pb.APPLIED)
    return user


def transfer(source: int, destination: int, amount: str, **fields: object) -> pb.TransferRequest:
    return pb.TransferRequest(
        request_id=str(fields.pop("request_id", new_request_id("x"))),
        from_user_id=source,
        to_user_id=destination,
        currency="USD",
        amount=amount,
        **fields,  # type: ignore[arg-type]
    )


def test_spend_frozen_settles_a_hold(stub: Stub) -> None:
    """SPEND_FROZEN lowers frozen and leaves available; beyond frozen it is REJECTED."""
    user = funded(stub)
    stub.ChangeBalance(change(user, pb.FREEZE, "30", wait=True), timeout=10)
    spent = stub.ChangeBalance(change(user, pb.SPEND_FROZEN, "20", wait=True), timeout=10)
    assert spent.status == pb.APPLIED
    assert (spent.balance.available, spent.balance.frozen) == ("70", "10")
    refused = stub.ChangeBalance(change(user, pb.SPEND_FROZEN, "11", wait=True), timeout=10)
    assert (refused.status, refused.reject_reason) == (pb.REJECTED, pb.INSUFFICIENT_FROZEN)


def test_a_transfer_with_wait_answers_applied_with_both_balances(stub: Stub) -> None:
    """Transfer wait=true ends APPLIED; both journals name the transfer and the other user."""
    source, destination = funded(stub), new_user()
    request = transfer(source, destination, "12.5", memo="rent", wait=True)
    answer = stub.Transfer(request, timeout=15).transfer
    assert (answer.status, answer.debited, answer.duplicate) == (pb.APPLIED, True, False)
    assert (answer.from_balance.available, answer.to_balance.available) == ("87.5", "12.5")
    assert (answer.from_user_id, answer.to_user_id, answer.amount) == (source, destination, "12.5")
    credit = stub.ListJournal(pb.ListJournalRequest(user_id=destination, currency="USD"))
    (entry,) = credit.entries
    assert (entry.type, entry.transfer_id, entry.counterparty_user_id, entry.memo) == (
        pb.TRANSFER_IN, request.request_id, source, "rent",
    )  # fmt: skip
    debit = stub.ListJournal(pb.ListJournalRequest(user_id=source, currency="USD")).entries[-1]
    assert (debit.type, debit.transfer_id, debit.counterparty_user_id) == (
        pb.TRANSFER_OUT, request.request_id, destination,
    )  # fmt: skip
    again = stub.GetTransfer(pb.GetTransferRequest(request_id=request.request_id), timeout=5)
    assert again.transfer.status == pb.APPLIED


def test_a_transfer_retry_is_a_duplicate_and_a_changed_one_a_conflict(stub: Stub) -> None:
    """The same transfer twice moves funds once; the same id with another amount is
    ALREADY_EXISTS."""
    source, destination = funded(stub), new_user()
    request = transfer(source, destination, "1", wait=True)
    stub.Transfer(request, timeout=15)
    retry = stub.Transfer(request, timeout=15).transfer
    assert (retry.status, retry.duplicate) == (pb.APPLIED, True)
    assert balance_of(stub, destination).available == "1"
    changed = transfer(source, destination, "2", request_id=request.request_id)
    with pytest.raises(grpc.RpcError) as refused:
        stub.Transfer(changed, timeout=5)
    assert rpc_code(refused.value) == grpc.StatusCode.ALREADY_EXISTS


def test_a_transfer_short_of_funds_is_rejected(stub: Stub) -> None:
    """A debit beyond available (or frozen, from_frozen) is REJECTED, nothing credited."""
    source, destination = funded(stub, "5"), new_user()
    short = stub.Transfer(transfer(source, destination, "6", wait=True), timeout=15).transfer
    assert (short.status, short.reject_reason, short.debited) == (
        pb.REJECTED, pb.INSUFFICIENT_AVAILABLE, False,
    )  # fmt: skip
    frozen = transfer(source, destination, "1", from_frozen=True, wait=True)
    hold = stub.Transfer(frozen, timeout=15).transfer
    assert (hold.status, hold.reject_reason) == (pb.REJECTED, pb.INSUFFICIENT_FROZEN)
    answer = stub.GetBalance(pb.GetBalanceRequest(user_id=destination), timeout=5)
    assert list(answer.balances) == []


def test_bad_transfer_fields_are_each_named_and_nothing_is_stored(stub: Stub) -> None:
    """Every malformed field is named; the transfer does not exist afterwards."""
    request = transfer(7, 7, "0", request_id="bad id")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Transfer(request, timeout=5)
    assert rpc_code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details()  # type: ignore[attr-defined]
    assert details.startswith("to_user_id: must differ from from_user_id")
    assert "(and 2 more invalid fields)" in details
    missing = transfer(0, new_user(), "1")
    with pytest.raises(grpc.RpcError) as no_source:
        stub.Transfer(missing, timeout=5)
    assert no_source.value.details().startswith("from_user_id:")  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as unknown:
        stub.GetTransfer(pb.GetTransferRequest(request_id=missing.request_id), timeout=5)
    assert rpc_code(unknown.value) == grpc.StatusCode.NOT_FOUND


def test_a_change_is_not_a_transfer_and_its_types_are_not_a_change(stub: Stub) -> None:
    """GetTransfer of a ChangeBalance's id is NOT_FOUND; ChangeBalance refuses the transfer
    leg types, naming `type`."""
    user = funded(stub)
    deposit = change(user, pb.DEPOSIT, "1", wait=True)
    stub.ChangeBalance(deposit, timeout=10)
    with pytest.raises(grpc.RpcError) as unknown:
        stub.GetTransfer(pb.GetTransferRequest(request_id=deposit.request_id), timeout=5)
    assert rpc_code(unknown.value) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as refused:
        stub.ChangeBalance(change(user, pb.TRANSFER_IN, "1"), timeout=5)
    assert rpc_code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("type:")  # type: ignore[attr-defined]


def test_an_atomic_settlement_applies_all_legs_or_none(stub: Stub) -> None:
    """Spend frozen USD and credit BTC in one step; when a leg is short, every item is
    REJECTED with that leg's reason and nothing moves."""
    user = funded(stub)
    stub.ChangeBalance(change(user, pb.FREEZE, "50", wait=True), timeout=10)
    settle = pb.ChangeBalancesRequest(
        changes=[change(user, pb.SPEND_FROZEN, "50"), change(user, pb.DEPOSIT, "0.01", "BTC")],
        atomic=True,
        wait=True,
    )
    results = stub.ChangeBalances(settle, timeout=15).results
    assert [r.status for r in results] == [pb.APPLIED, pb.APPLIED]
    assert (results[0].balance.frozen, results[1].balance.available) == ("0", "0.01")
    short = pb.ChangeBalancesRequest(
        changes=[change(user, pb.DEPOSIT, "1", "BTC"), change(user, pb.SPEND_FROZEN, "1")],
        atomic=True,
        wait=True,
    )
    refused = stub.ChangeBalances(short, timeout=15).results
    assert [(r.status, r.reject_reason) for r in refused] == [
        (pb.REJECTED, pb.INSUFFICIENT_FROZEN),
        (pb.REJECTED, pb.INSUFFICIENT_FROZEN),
    ]
    assert balance_of(stub, user, "BTC").available == "0.01"


def test_an_atomic_batch_of_several_users_or_too_many_legs_is_invalid(stub: Stub) -> None:
    """Mixed users name each stray item's user_id; more than 100 legs names `changes`."""
    user = new_user()
    mixed = pb.ChangeBalancesRequest(
        changes=[change(user, pb.DEPOSIT, "1"), change(user + 1, pb.DEPOSIT, "1")], atomic=True
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.ChangeBalances(mixed, timeout=5)
    assert rpc_code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("changes[1].user_id:")  # type: ignore[attr-defined]
    many = pb.ChangeBalancesRequest(
        changes=[change(user, pb.DEPOSIT, "1") for _ in range(101)], atomic=True
    )
    with pytest.raises(grpc.RpcError) as too_many:
        stub.ChangeBalances(many, timeout=5)
    assert too_many.value.details().startswith("changes:")  # type: ignore[attr-defined]
    answer = stub.GetBalance(pb.GetBalanceRequest(user_id=user), timeout=5)
    assert list(answer.balances) == []


def test_transfers_around_a_ring_conserve_the_total(stub: Stub) -> None:
    """Funds passed around users of different partitions (and shards) end where the
    transfers say, and the total is unchanged."""
    users = [funded(stub, "10") for _ in range(6)]
    for index, source in enumerate(users):
        destination = users[(index + 1) % len(users)]
        answer = stub.Transfer(transfer(source, destination, str(index + 1), wait=True), timeout=15)
        assert answer.transfer.status == pb.APPLIED
    amounts = [balance_of(stub, user).available for user in users]
    # user i paid i+1 and received i (user 0 received 6 from the last one).
    assert amounts == ["15", "9", "9", "9", "9", "9"]
