"""Holds on every stack (docs/api.md, "Holds"): a hold is captured in part and released; a
hold expires by itself (the leader's sweep, through the outbox and the log); a capture
racing the expiry is decided by their order in the log, and both sides agree on it."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import grpc
import pytest
from e2e_support import balance_of, change, new_request_id, new_user
from harness.waiting import wait_for

from ledgerd.cli import main
from ledgerd.cli.exit_codes import ExitCode
from ledgerd.client import AsyncLedgerdClient, LedgerdClient
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from conftest import SharedServers

Stub = pb_grpc.BalanceServiceStub


def _hold(user: int, amount: str, *, timeout_ms: int = 60_000) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=new_request_id("hold"), user_id=user, currency="USD", type=pb.HOLD,
        amount=amount, timeout_ms=timeout_ms, wait=True,
    )  # fmt: skip


def _capture(user: int, hold_id: str, amount: str, to_user: int = 0) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=new_request_id("capture"), user_id=user, currency="USD",
        type=pb.HOLD_CAPTURE, amount=amount, hold_id=hold_id, to_user_id=to_user, wait=True,
    )  # fmt: skip


def _release(user: int, hold_id: str) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=new_request_id("release"), user_id=user, currency="USD",
        type=pb.HOLD_RELEASE, hold_id=hold_id, wait=True,
    )  # fmt: skip


def _get_hold(stub: Stub, user: int, hold_id: str) -> pb.Hold:
    return stub.GetHold(pb.GetHoldRequest(user_id=user, hold_id=hold_id), timeout=10).hold


def _funded(stub: Stub, amount: str) -> int:
    user = new_user()
    deposit = stub.ChangeBalance(change(user, pb.DEPOSIT, amount, wait=True), timeout=10)
    assert deposit.status == pb.APPLIED
    return user


def test_a_hold_captured_in_part_then_released(stub: Stub) -> None:
    """HOLD 60 of 100 (available 40, frozen 60); capture 25 (frozen 35); GetHold shows 60,
    25 captured, 35 remaining, OPEN; release: available 75, frozen 0, RELEASED; then a
    capture is HOLD_RELEASED, a second release too; journal entries name the hold."""
    user = _funded(stub, "100")
    held = stub.ChangeBalance(_hold(user, "60"), timeout=10)
    assert (held.status, held.balance.available, held.balance.frozen) == (pb.APPLIED, "40", "60")
    hold_id = held.request_id
    captured = stub.ChangeBalance(_capture(user, hold_id, "25"), timeout=10)
    assert (captured.status, captured.balance.frozen) == (pb.APPLIED, "35")
    hold = _get_hold(stub, user, hold_id)
    assert (hold.amount, hold.captured, hold.remaining, hold.state) == (
        "60", "25", "35", pb.HOLD_STATE_OPEN,
    )  # fmt: skip
    assert hold.expires_at_unix_ms > 0
    released = stub.ChangeBalance(_release(user, hold_id), timeout=10)
    assert (released.status, released.balance.available, released.balance.frozen) == (
        pb.APPLIED, "75", "0",
    )  # fmt: skip
    hold = _get_hold(stub, user, hold_id)
    assert (hold.remaining, hold.state) == ("0", pb.HOLD_STATE_RELEASED)
    late = stub.ChangeBalance(_capture(user, hold_id, "1"), timeout=10)
    assert (late.status, late.reject_reason) == (pb.REJECTED, pb.HOLD_RELEASED)
    again = stub.ChangeBalance(_release(user, hold_id), timeout=10)
    assert (again.status, again.reject_reason) == (pb.REJECTED, pb.HOLD_RELEASED)
    entries = stub.ListJournal(pb.ListJournalRequest(user_id=user, currency="USD"), timeout=10)
    assert [(e.type, e.amount, e.hold_id) for e in entries.entries[1:]] == [
        (pb.HOLD, "60", hold_id), (pb.HOLD_CAPTURE, "25", hold_id),
        (pb.HOLD_RELEASE, "35", hold_id),
    ]  # fmt: skip


def test_over_capture_is_rejected_and_a_capture_can_credit_another_user(stub: Stub) -> None:
    """Capturing more than remains is HOLD_OVER_CAPTURE; a capture to another user credits
    that user exactly once (a transfer's credit)."""
    user, payee = _funded(stub, "10"), new_user()
    hold_id = stub.ChangeBalance(_hold(user, "10"), timeout=10).request_id
    over = stub.ChangeBalance(_capture(user, hold_id, "10.5"), timeout=10)
    assert (over.status, over.reject_reason) == (pb.REJECTED, pb.HOLD_OVER_CAPTURE)
    paid = stub.ChangeBalance(_capture(user, hold_id, "10", payee), timeout=10)
    assert (paid.status, paid.balance.available, paid.balance.frozen) == (pb.APPLIED, "0", "0")
    wait_for(lambda: balance_of(stub, payee).available, "10", 10, "the payee's credit")
    assert _get_hold(stub, user, hold_id).state == pb.HOLD_STATE_CAPTURED


def test_a_hold_expires_by_itself(stub: Stub) -> None:
    """A hold left alone past its expiry is released by the service (HOLD_EXPIRE, request id
    "<hold>~expire"): available back, EXPIRED; a capture after it is HOLD_EXPIRED."""
    user = _funded(stub, "10")
    hold_id = stub.ChangeBalance(_hold(user, "4", timeout_ms=300), timeout=10).request_id
    wait_for(lambda: _get_hold(stub, user, hold_id).state, pb.HOLD_STATE_EXPIRED, 20, "the expiry")
    # GetBalance may lag the journal (the cache), never go back: wait for the release.
    wait_for(lambda: balance_of(stub, user).frozen, "0", 10, "GetBalance after the expiry")
    assert balance_of(stub, user).available == "10"
    late = stub.ChangeBalance(_capture(user, hold_id, "1"), timeout=10)
    assert (late.status, late.reject_reason) == (pb.REJECTED, pb.HOLD_EXPIRED)
    entries = stub.ListJournal(pb.ListJournalRequest(user_id=user, currency="USD"), timeout=10)
    last = entries.entries[-1]
    assert (last.type, last.request_id, last.amount, last.hold_id) == (
        pb.HOLD_EXPIRE, hold_id + "~expire", "4", hold_id,
    )  # fmt: skip


def test_a_capture_racing_the_expiry_is_decided_by_log_order(stub: Stub) -> None:
    """Captures sent around a hold's expiry: each is APPLIED before the HOLD_EXPIRE in the
    journal, or HOLD_EXPIRED after it; the amounts add up either way."""
    user = _funded(stub, "10")
    hold_id = stub.ChangeBalance(_hold(user, "10", timeout_ms=50), timeout=10).request_id
    outcomes = [stub.ChangeBalance(_capture(user, hold_id, "1"), timeout=10) for _ in range(5)]
    wait_for(lambda: _get_hold(stub, user, hold_id).state, pb.HOLD_STATE_EXPIRED, 20, "the expiry")
    applied = [o.request_id for o in outcomes if o.status == pb.APPLIED]
    refused = [o for o in outcomes if o.status == pb.REJECTED]
    assert all(o.reject_reason == pb.HOLD_EXPIRED for o in refused)
    entries = stub.ListJournal(
        pb.ListJournalRequest(user_id=user, currency="USD"), timeout=10
    ).entries
    order = [e.request_id for e in entries]
    expiry = order.index(hold_id + "~expire")
    assert order[2:expiry] == applied  # every applied capture precedes the expiry
    hold = _get_hold(stub, user, hold_id)
    assert hold.captured == str(len(applied))
    assert entries[expiry].amount == str(10 - len(applied))
    wait_for(lambda: balance_of(stub, user).frozen, "0", 10, "GetBalance after the expiry")
    assert balance_of(stub, user).available == str(10 - len(applied))


def test_a_client_cannot_send_an_expiry_or_a_hold_in_an_atomic_batch(stub: Stub) -> None:
    """HOLD_EXPIRE is the service's own: INVALID_ARGUMENT from a client; so is a hold change
    in an atomic ChangeBalances."""
    user = new_user()
    expire = pb.ChangeBalanceRequest(
        request_id=new_request_id("x"), user_id=user, currency="USD", type=pb.HOLD_EXPIRE,
        hold_id="h",
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as refused:
        stub.ChangeBalance(expire, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    atomic = pb.ChangeBalancesRequest(changes=[_hold(user, "1")], atomic=True)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ChangeBalances(atomic, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_the_client_and_the_cli_place_capture_release_and_get_a_hold(
    shared_servers: SharedServers, capsys: pytest.CaptureFixture[str]
) -> None:
    """LedgerdClient.hold / capture_hold / get_hold, then `ledgerd hold release` and
    `ledgerd hold get` (exit 0, the hold as JSON); a second release exits 3 (REJECTED);
    AsyncLedgerdClient.get_hold reads it too."""
    server = shared_servers.of("embedded")  # the commands do not depend on the stack
    user = new_user()
    with LedgerdClient(server.target) as client:
        assert client.change("DEPOSIT", user, "USD", "9", wait=True).status == pb.APPLIED
        hold_id = client.hold(user, "USD", "6", timeout_ms=60_000, wait=True).request_id
        assert client.capture_hold(user, "USD", hold_id, "2", wait=True).status == pb.APPLIED
        assert client.get_hold(user, hold_id).remaining == "4"
    release = ["hold", "release", str(user), "USD", hold_id, "--wait", "--addr", server.target]
    assert main(release) == ExitCode.OK
    capsys.readouterr()
    assert main(["hold", "get", str(user), hold_id, "--addr", server.target]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)["hold"]
    assert (shown["captured"], shown["remaining"], shown["state"]) == (
        "2", "0", "HOLD_STATE_RELEASED",
    )  # fmt: skip
    assert main(release) == ExitCode.REJECTED

    async def read_async() -> pb.Hold:
        async with AsyncLedgerdClient(server.target) as client:
            return await client.get_hold(user, hold_id)

    assert asyncio.run(read_async()).state == pb.HOLD_STATE_RELEASED
