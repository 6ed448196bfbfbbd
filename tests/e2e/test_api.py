"""Each RPC of ledgerd.v1.BalanceService against a real server (embedded default)."""

from __future__ import annotations

import grpc
import pytest
from e2e_support import balance_of, change, final_status, new_request_id, new_user, rpc_code
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

Stub = pb_grpc.BalanceServiceStub


def test_deposit_with_wait_answers_applied_with_the_new_balance(stub: Stub) -> None:
    """DEPOSIT with wait=true answers APPLIED and the balance after it."""
    user = new_user()
    result = stub.ChangeBalance(change(user, pb.DEPOSIT, "10.25", wait=True), timeout=10)
    assert result.status == pb.APPLIED
    assert not result.duplicate
    assert (result.balance.available, result.balance.frozen, result.balance.version) == (
        "10.25",
        "0",
        1,
    )


def test_each_operation_moves_available_and_frozen(stub: Stub) -> None:
    """DEPOSIT, FREEZE, UNFREEZE and WITHDRAW change the amounts as docs/architecture.md §4 says."""
    user = new_user()
    for kind, amount, available, frozen in [
        (pb.DEPOSIT, "100", "100", "0"),
        (pb.FREEZE, "30.5", "69.5", "30.5"),
        (pb.UNFREEZE, "0.5", "70", "30"),
        (pb.WITHDRAW, "70", "0", "30"),
    ]:
        result = stub.ChangeBalance(change(user, kind, amount, wait=True), timeout=10)
        assert result.status == pb.APPLIED
        assert (result.balance.available, result.balance.frozen) == (available, frozen)
    balance = balance_of(stub, user)
    assert (balance.available, balance.frozen, balance.version) == ("0", "30", 4)


@pytest.mark.parametrize(
    ("kind", "amount", "reason"),
    [
        (pb.WITHDRAW, "5.000000000000000001", pb.INSUFFICIENT_AVAILABLE),
        (pb.FREEZE, "6", pb.INSUFFICIENT_AVAILABLE),
        (pb.UNFREEZE, "1", pb.INSUFFICIENT_FROZEN),
        (pb.DEPOSIT, "99999999999999999999.999999999999999999", pb.AMOUNT_OVERFLOW),
    ],
)
def test_a_change_that_breaks_a_rule_is_rejected_and_changes_nothing(
    stub: Stub, kind: int, amount: str, reason: int
) -> None:
    """Going negative or past DECIMAL(38,18) is REJECTED with its reason; balance untouched."""
    user = new_user()
    stub.ChangeBalance(change(user, pb.DEPOSIT, "5", wait=True), timeout=10)
    result = stub.ChangeBalance(change(user, kind, amount, wait=True), timeout=10)
    assert (result.status, result.reject_reason) == (pb.REJECTED, reason)
    assert not result.HasField("balance")
    balance = balance_of(stub, user)
    assert (balance.available, balance.frozen, balance.version) == ("5", "0", 1)


def test_without_wait_the_answer_is_pending_and_the_change_is_applied_later(stub: Stub) -> None:
    """wait=false answers once durable (PENDING); GetChange later shows APPLIED with balance."""
    user = new_user()
    request = change(user, pb.DEPOSIT, "7")
    result = stub.ChangeBalance(request, timeout=10)
    assert result.status == pb.PENDING
    later = final_status(stub, request.request_id)
    assert later.status == pb.APPLIED
    assert later.balance.available == "7"


def test_identical_retry_returns_the_original_status_marked_duplicate(stub: Stub) -> None:
    """The same request twice is applied once; the retry says duplicate=true."""
    user = new_user()
    request = change(user, pb.DEPOSIT, "3", wait=True)
    first = stub.ChangeBalance(request, timeout=10)
    second = stub.ChangeBalance(request, timeout=10)
    assert (first.status, first.duplicate) == (pb.APPLIED, False)
    assert (second.status, second.duplicate) == (pb.APPLIED, True)
    assert second.balance.available == "3"
    assert balance_of(stub, user).available == "3"


def test_same_request_id_with_different_fields_is_already_exists(stub: Stub) -> None:
    """Reusing a request_id for another change fails with ALREADY_EXISTS and changes nothing."""
    user = new_user()
    request_id = new_request_id()
    stub.ChangeBalance(change(user, pb.DEPOSIT, "3", request_id=request_id, wait=True), timeout=10)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalance(change(user, pb.DEPOSIT, "4", request_id=request_id), timeout=10)
    assert rpc_code(raised.value) == grpc.StatusCode.ALREADY_EXISTS
    assert "request_id" in raised.value.details()  # type: ignore[attr-defined]
    assert balance_of(stub, user).available == "3"


def test_untouched_account_reads_as_zero_version_zero(stub: Stub) -> None:
    """GetBalance of an account never changed is zeros at version 0."""
    balance = balance_of(stub, new_user(), "EUR")
    assert (balance.available, balance.frozen, balance.version) == ("0", "0", 0)


def test_get_balance_without_currency_lists_every_currency(stub: Stub) -> None:
    """An empty currency returns each currency the user has, by code."""
    user = new_user()
    for currency in ("USD", "BTC", "EUR"):
        stub.ChangeBalance(change(user, pb.DEPOSIT, "1", currency=currency, wait=True), timeout=10)
    answer = stub.GetBalance(pb.GetBalanceRequest(user_id=user), timeout=5)
    assert [b.currency for b in answer.balances] == ["BTC", "EUR", "USD"]


def test_list_journal_pages_by_version_with_amounts_after(stub: Stub) -> None:
    """ListJournal returns entries after a version, ascending, with amounts after each change."""
    user = new_user()
    for amount in ("1", "2", "3"):
        stub.ChangeBalance(
            change(user, pb.DEPOSIT, amount, memo=f"m{amount}", wait=True), timeout=10
        )
    page = stub.ListJournal(
        pb.ListJournalRequest(user_id=user, currency="USD", after_version=1, limit=1), timeout=5
    ).entries
    assert [(e.version, e.amount, e.available_after, e.memo) for e in page] == [(2, "2", "3", "m2")]
    everything = stub.ListJournal(pb.ListJournalRequest(user_id=user, currency="USD"), timeout=5)
    assert [e.available_after for e in everything.entries] == ["1", "3", "6"]
    assert all(e.applied_at_unix_ms > 0 and e.type == pb.DEPOSIT for e in everything.entries)


def test_get_change_of_unknown_request_is_not_found(stub: Stub) -> None:
    """GetChange of a request_id never used is NOT_FOUND."""
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetChange(pb.GetChangeRequest(request_id=new_request_id()), timeout=5)
    assert rpc_code(raised.value) == grpc.StatusCode.NOT_FOUND


def test_batch_answers_in_request_order_and_applies_in_order(stub: Stub) -> None:
    """ChangeBalances keeps order: a withdraw after its deposit in the same batch succeeds."""
    user = new_user()
    batch = pb.ChangeBalancesRequest(
        changes=[
            change(user, pb.DEPOSIT, "10"),
            change(user, pb.WITHDRAW, "4"),
            change(user, pb.WITHDRAW, "7"),
        ],
        wait=True,
    )
    results = stub.ChangeBalances(batch, timeout=10).results
    assert [r.request_id for r in results] == [c.request_id for c in batch.changes]
    assert [r.status for r in results] == [pb.APPLIED, pb.APPLIED, pb.REJECTED]
    assert results[1].balance.available == "6"


def test_batch_with_one_invalid_item_stores_nothing(stub: Stub) -> None:
    """An invalid item fails the batch with its index, and no item of it is stored."""
    user = new_user()
    good = change(user, pb.DEPOSIT, "1")
    bad = change(user, pb.DEPOSIT, "1.")
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalances(pb.ChangeBalancesRequest(changes=[good, bad]), timeout=10)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "changes[1].amount" in raised.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetChange(pb.GetChangeRequest(request_id=good.request_id), timeout=5)
    assert rpc_code(missing.value) == grpc.StatusCode.NOT_FOUND


def test_batch_with_a_conflicting_item_stores_nothing(stub: Stub) -> None:
    """A batch reusing a request_id with other fields is ALREADY_EXISTS and stores none of it."""
    user = new_user()
    taken = change(user, pb.DEPOSIT, "1", wait=True)
    stub.ChangeBalance(taken, timeout=10)
    fresh = change(user, pb.DEPOSIT, "2")
    clash = change(user, pb.DEPOSIT, "9", request_id=taken.request_id)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalances(pb.ChangeBalancesRequest(changes=[fresh, clash]), timeout=10)
    assert rpc_code(raised.value) == grpc.StatusCode.ALREADY_EXISTS
    assert "changes[1].request_id" in raised.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetChange(pb.GetChangeRequest(request_id=fresh.request_id), timeout=5)
    assert rpc_code(missing.value) == grpc.StatusCode.NOT_FOUND


def test_batch_over_ten_thousand_changes_is_invalid(stub: Stub) -> None:
    """More than 10,000 changes in one call is INVALID_ARGUMENT naming `changes`."""
    user = new_user()
    changes = [change(user, pb.DEPOSIT, "1", request_id=f"big-{user}-{i}") for i in range(10_001)]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ChangeBalances(pb.ChangeBalancesRequest(changes=changes), timeout=30)
    assert rpc_code(raised.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "changes" in raised.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError):
        stub.GetChange(pb.GetChangeRequest(request_id=f"big-{user}-0"), timeout=5)


def test_wait_answers_with_the_current_status_before_a_short_deadline(stub: Stub) -> None:
    """With a short deadline, wait=true still answers (not DEADLINE_EXCEEDED).

    The server answers a margin of 10% of the time left before the deadline (at least 20 ms):
    1 s leaves 100 ms, so a loaded machine does not turn the answer into DEADLINE_EXCEEDED
    (0.3 s left 30 ms and failed under a load average of 13)."""
    user = new_user()
    request = change(user, pb.DEPOSIT, "1", wait=True)
    result = stub.ChangeBalance(request, timeout=1.0)
    assert result.status in (pb.PENDING, pb.SENT, pb.APPLIED)
    assert final_status(stub, request.request_id).status == pb.APPLIED


def test_health_check_reports_serving_with_components(stub: Stub) -> None:
    """HealthCheck is SERVING and names store, log, cache and consumer."""
    answer = stub.HealthCheck(pb.HealthCheckRequest(), timeout=5)
    assert answer.status == pb.HealthCheckResponse.SERVING
    assert {"store", "log", "cache", "consumer"} <= set(answer.components)
    assert answer.components["store"] == "ok"


def test_standard_health_service_answers_serving(channel: grpc.Channel) -> None:
    """grpc.health.v1 reports SERVING for the server and for BalanceService."""
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "ledgerd.v1.BalanceService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_balance_service(channel: grpc.Channel) -> None:
    """Server reflection lists ledgerd.v1.BalanceService."""
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in answer.list_services_response.service}
    assert "ledgerd.v1.BalanceService" in names
