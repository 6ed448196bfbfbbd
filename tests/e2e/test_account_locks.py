"""Locked accounts on every stack: a lock applied between two changes takes effect
exactly there (docs/api.md, "Locked accounts")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from e2e_support import balance_of, change, new_request_id, new_user
from harness.waiting import wait_for

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    pass

Stub = pb_grpc.BalanceServiceStub


def test_a_lock_between_two_withdrawals_rejects_the_second_and_credits_still_apply(
    stub: Stub,
) -> None:
    """withdraw (applied), lock debits, withdraw (ACCOUNT_LOCKED), deposit (applied, the
    balance after it locked); the journal shows the lock with its memo; unlock lets the
    withdrawal through again."""
    user = new_user()
    assert stub.ChangeBalance(change(user, pb.DEPOSIT, "100", wait=True), timeout=10).status == (
        pb.APPLIED
    )
    first = stub.ChangeBalance(change(user, pb.WITHDRAW, "10", wait=True), timeout=10)
    assert first.status == pb.APPLIED
    lock = pb.LockAccountRequest(
        request_id=new_request_id("lock"), user_id=user, currency="USD",
        lock=pb.ACCOUNT_LOCK_DEBITS, memo="compliance hold", wait=True,
    )  # fmt: skip
    locked = stub.LockAccount(lock, timeout=10).result
    assert (locked.status, locked.balance.lock, locked.balance.version) == (
        pb.APPLIED, pb.ACCOUNT_LOCK_DEBITS, 3,
    )  # fmt: skip
    second = stub.ChangeBalance(change(user, pb.WITHDRAW, "10", wait=True), timeout=10)
    assert (second.status, second.reject_reason) == (pb.REJECTED, pb.ACCOUNT_LOCKED)
    credit = stub.ChangeBalance(change(user, pb.DEPOSIT, "5", wait=True), timeout=10)
    assert (credit.status, credit.balance.available) == (pb.APPLIED, "95")
    assert credit.balance.lock == pb.ACCOUNT_LOCK_DEBITS
    wait_for(lambda: balance_of(stub, user).available, "95", 10, "GetBalance after the deposit")
    entries = stub.ListJournal(
        pb.ListJournalRequest(user_id=user, currency="USD"), timeout=10
    ).entries
    assert [(e.type, e.memo) for e in entries][2] == (pb.LOCK_DEBITS, "compliance hold")
    assert [e.type for e in entries] == [pb.DEPOSIT, pb.WITHDRAW, pb.LOCK_DEBITS, pb.DEPOSIT]

    unlock = pb.UnlockAccountRequest(
        request_id=new_request_id("unlock"), user_id=user, currency="USD", wait=True
    )
    assert stub.UnlockAccount(unlock, timeout=10).result.balance.lock == pb.ACCOUNT_LOCK_NONE
    third = stub.ChangeBalance(change(user, pb.WITHDRAW, "10", wait=True), timeout=10)
    assert (third.status, third.balance.available) == (pb.APPLIED, "85")


def test_a_fully_locked_account_rejects_deposits_too(stub: Stub) -> None:
    """Under a full lock a deposit is ACCOUNT_LOCKED and the balance stays."""
    user = new_user()
    stub.ChangeBalance(change(user, pb.DEPOSIT, "7", wait=True), timeout=10)
    lock = pb.LockAccountRequest(
        request_id=new_request_id("lock"), user_id=user, currency="USD",
        lock=pb.ACCOUNT_LOCK_FULL, wait=True,
    )  # fmt: skip
    assert stub.LockAccount(lock, timeout=10).result.status == pb.APPLIED
    deposit = stub.ChangeBalance(change(user, pb.DEPOSIT, "1", wait=True), timeout=10)
    assert (deposit.status, deposit.reject_reason) == (pb.REJECTED, pb.ACCOUNT_LOCKED)


def test_get_balance_shows_the_lock_and_its_end(stub: Stub) -> None:
    """GetBalance answers the account's lock, from the cache of every stack (Redis on the
    production ones), and no lock once the unlock applied."""
    user = new_user()
    stub.ChangeBalance(change(user, pb.DEPOSIT, "5", wait=True), timeout=10)
    wait_for(lambda: balance_of(stub, user).version, 1, 10, "GetBalance before the lock")
    lock = pb.LockAccountRequest(
        request_id=new_request_id("lock"), user_id=user, currency="USD",
        lock=pb.ACCOUNT_LOCK_FULL, wait=True,
    )  # fmt: skip
    assert stub.LockAccount(lock, timeout=10).result.status == pb.APPLIED
    wait_for(lambda: balance_of(stub, user).lock, pb.ACCOUNT_LOCK_FULL, 10, "GetBalance")
    unlock = pb.UnlockAccountRequest(
        request_id=new_request_id("unlock"), user_id=user, currency="USD", wait=True
    )
    assert stub.UnlockAccount(unlock, timeout=10).result.status == pb.APPLIED
    wait_for(lambda: balance_of(stub, user).lock, pb.ACCOUNT_LOCK_NONE, 10, "GetBalance")
