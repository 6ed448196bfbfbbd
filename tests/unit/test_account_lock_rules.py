"""Locked accounts: the decision rules (debits and full locks, unlock), atomic groups and
transfers, the lock change's wire form, and the admin scope."""

from __future__ import annotations

import dataclasses

import pytest

from ledgerd.api.auth import ADMIN_METHODS, SERVICE_PREFIX, parse_keys
from ledgerd.api.convert import balance_to_proto, lock_from_proto, unlock_from_proto
from ledgerd.consumer.decide import decide_batch
from ledgerd.domain.model import (
    Account,
    AccountLock,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    RejectReason,
)
from ledgerd.domain.rules import Applied, Rejected, apply_change
from ledgerd.errors import InvalidArgument, PoisonMessage
from ledgerd.log.codec import decode_change, encode_change
from ledgerd.v1 import balance_pb2 as pb

USER, OTHER, CURRENCY = 7, 8, "EUR"
NOW_MS = 1_700_000_000_000
DEBITS = (
    ChangeType.WITHDRAW,
    ChangeType.FREEZE,
    ChangeType.SPEND_FROZEN,
    ChangeType.TRANSFER_OUT,
    ChangeType.TRANSFER_OUT_FROZEN,
)
ALLOWED_UNDER_DEBIT_LOCK = (
    ChangeType.DEPOSIT,
    ChangeType.UNFREEZE,
    ChangeType.TRANSFER_IN,
    ChangeType.TRANSFER_RETURN,
)


def funded(lock: AccountLock = AccountLock.NONE) -> Balance:
    return Balance(USER, CURRENCY, available=100, frozen=100, version=3, lock=lock)


def change(kind: ChangeType, amount: int = 10, request_id: str = "r") -> ChangeRequest:
    if kind.is_lock_change:
        amount = 0
    return ChangeRequest(request_id, USER, CURRENCY, kind, amount, memo="why")


@pytest.mark.parametrize("kind", DEBITS)
def test_a_debit_lock_rejects_every_debit_with_account_locked(kind: ChangeType) -> None:
    """WITHDRAW, FREEZE, SPEND_FROZEN and both transfer debits: ACCOUNT_LOCKED, though funded."""
    assert apply_change(funded(AccountLock.DEBITS), change(kind)) == Rejected(
        RejectReason.ACCOUNT_LOCKED
    )


@pytest.mark.parametrize("kind", ALLOWED_UNDER_DEBIT_LOCK)
def test_a_debit_lock_lets_credits_and_unfreeze_apply(kind: ChangeType) -> None:
    """Credits, a transfer's return and UNFREEZE (money stays in the account) apply, and the
    account stays locked."""
    result = apply_change(funded(AccountLock.DEBITS), change(kind))
    assert isinstance(result, Applied)
    assert result.balance.lock == AccountLock.DEBITS
    assert result.balance.version == 4


@pytest.mark.parametrize(
    "kind",
    [
        k
        for k in ChangeType
        if not k.is_lock_change and k not in (ChangeType.TRANSFER_RETURN, ChangeType.HOLD_EXPIRE)
    ],
)
def test_a_full_lock_rejects_every_change_of_money(kind: ChangeType) -> None:
    """Every change but a transfer's return and a hold's expiry is ACCOUNT_LOCKED under a
    full lock."""
    assert apply_change(funded(AccountLock.FULL), change(kind)) == Rejected(
        RejectReason.ACCOUNT_LOCKED
    )


def test_a_full_lock_lets_a_transfer_return_apply() -> None:
    """The account's own money coming back is not refused (it would stay in flight)."""
    result = apply_change(funded(AccountLock.FULL), change(ChangeType.TRANSFER_RETURN))
    assert isinstance(result, Applied)
    assert result.balance.available == 110


@pytest.mark.parametrize(
    ("kind", "lock"),
    [
        (ChangeType.LOCK_DEBITS, AccountLock.DEBITS),
        (ChangeType.LOCK_FULL, AccountLock.FULL),
        (ChangeType.UNLOCK, AccountLock.NONE),
    ],
)
@pytest.mark.parametrize("before", list(AccountLock))
def test_a_lock_change_always_applies_sets_the_lock_and_moves_no_money(
    kind: ChangeType, lock: AccountLock, before: AccountLock
) -> None:
    """Whatever the lock in force, a lock change applies: one version, amounts kept."""
    result = apply_change(funded(before), change(kind))
    assert isinstance(result, Applied)
    assert result.balance == Balance(USER, CURRENCY, 100, 100, 4, lock)


def test_the_lock_is_checked_before_the_funds() -> None:
    """A locked account short of funds says ACCOUNT_LOCKED, not INSUFFICIENT_AVAILABLE."""
    assert apply_change(funded(AccountLock.DEBITS), change(ChangeType.WITHDRAW, 10**6)) == (
        Rejected(RejectReason.ACCOUNT_LOCKED)
    )


def test_a_lock_takes_effect_exactly_between_the_changes_around_it() -> None:
    """In one batch: withdraw, lock debits, withdraw (rejected), deposit (applied), unlock,
    withdraw (applied): the journal has the lock changes with their memo."""
    changes = [
        change(ChangeType.WITHDRAW, 10, "w1"),
        dataclasses.replace(change(ChangeType.LOCK_DEBITS, 0, "lock"), actor="ops-key"),
        change(ChangeType.WITHDRAW, 10, "w2"),
        change(ChangeType.DEPOSIT, 5, "d1"),
        change(ChangeType.UNLOCK, 0, "unlock"),
        change(ChangeType.WITHDRAW, 10, "w3"),
    ]
    account = Account(USER, CURRENCY)
    decision = decide_batch(changes, set(), {account: funded()}, NOW_MS)
    statuses = {o.request_id: (o.status, o.reject_reason) for o in decision.outcomes}
    assert statuses["w2"] == (ChangeStatus.REJECTED, RejectReason.ACCOUNT_LOCKED)
    assert [e.request_id for e in decision.journal] == ["w1", "lock", "d1", "unlock", "w3"]
    lock_entry = decision.journal[1]
    assert (lock_entry.type, lock_entry.amount, lock_entry.memo, lock_entry.actor) == (
        ChangeType.LOCK_DEBITS, 0, "why", "ops-key",
    )  # fmt: skip
    assert decision.balances[account] == Balance(USER, CURRENCY, 85, 100, 8, AccountLock.NONE)


def test_one_locked_leg_rejects_the_whole_atomic_group() -> None:
    """An atomic group with a debit on a debit-locked account: every leg ACCOUNT_LOCKED,
    nothing applied (the deposit leg too)."""
    account = Account(USER, CURRENCY)
    legs = [
        dataclasses.replace(change(kind, 10, f"g{i}"), atomic_group="g0", atomic_leg=i)
        for i, kind in enumerate((ChangeType.DEPOSIT, ChangeType.WITHDRAW))
    ]
    decision = decide_batch(legs, set(), {account: funded(AccountLock.DEBITS)}, NOW_MS)
    assert decision.journal == []
    assert decision.balances == {}
    assert {(o.status, o.reject_reason) for o in decision.outcomes} == {
        (ChangeStatus.REJECTED, RejectReason.ACCOUNT_LOCKED)
    }


def test_a_transfer_out_of_a_locked_account_is_rejected_and_sends_no_credit() -> None:
    """The debit leg is refused (ACCOUNT_LOCKED): no credit follows."""
    debit = ChangeRequest("t1", USER, CURRENCY, ChangeType.TRANSFER_OUT, 10, "", "t1", OTHER)
    decision = decide_batch([debit], set(), {debit.account: funded(AccountLock.DEBITS)}, NOW_MS)
    assert decision.rejections[0].reason is RejectReason.ACCOUNT_LOCKED
    assert decision.follow_ups == []


def test_a_transfer_into_a_fully_locked_account_goes_back_to_its_source() -> None:
    """The credit is refused (ACCOUNT_LOCKED) and its return sent to the source; under a
    debit lock the same credit applies."""
    debit = ChangeRequest("t1", OTHER, CURRENCY, ChangeType.TRANSFER_OUT, 10, "", "t1", USER)
    credit = debit.credit()
    full = decide_batch([credit], set(), {credit.account: funded(AccountLock.FULL)}, NOW_MS)
    assert full.rejections[0].reason is RejectReason.ACCOUNT_LOCKED
    assert full.follow_ups == [credit.returned()]
    debits = decide_batch([credit], set(), {credit.account: funded(AccountLock.DEBITS)}, NOW_MS)
    assert [e.request_id for e in debits.journal] == ["t1~in"]


def test_a_lock_change_travels_the_log_with_its_actor() -> None:
    """Encoded and decoded, a lock change keeps its type, memo and actor; a lock change
    with an amount is poison."""
    lock = dataclasses.replace(change(ChangeType.LOCK_FULL, 0, "l1"), actor="ops-key")
    assert decode_change(encode_change(lock)) == lock
    with pytest.raises(PoisonMessage):
        decode_change(encode_change(dataclasses.replace(lock, amount=5)))


def test_lock_account_requests_need_a_debits_or_full_lock() -> None:
    """LockAccount with no lock (ACCOUNT_LOCK_NONE) is INVALID_ARGUMENT naming `lock`;
    a valid one becomes the lock change, made by its key; UnlockAccount is UNLOCK."""
    with pytest.raises(InvalidArgument) as refused:
        lock_from_proto(pb.LockAccountRequest(request_id="l", user_id=USER, currency="EUR"), "")
    assert [v.field for v in refused.value.violations] == ["lock"]
    request = pb.LockAccountRequest(
        request_id="l", user_id=USER, currency="EUR", lock=pb.ACCOUNT_LOCK_FULL, memo="aml"
    )
    made = lock_from_proto(request, "ops-key")
    assert (made.type, made.amount, made.memo, made.actor) == (
        ChangeType.LOCK_FULL, 0, "aml", "ops-key",
    )  # fmt: skip
    unlock = pb.UnlockAccountRequest(request_id="u", user_id=USER, currency="EUR")
    assert unlock_from_proto(unlock, "").type is ChangeType.UNLOCK


def test_get_balance_shows_the_lock() -> None:
    """The Balance message carries the account's lock."""
    assert balance_to_proto(funded(AccountLock.DEBITS)).lock == pb.ACCOUNT_LOCK_DEBITS


def test_locking_needs_the_admin_scope_and_default_keys_lack_it() -> None:
    """LockAccount and UnlockAccount are admin methods; a key without scopes has read and
    write only, and admin is a scope a key may name."""
    assert {SERVICE_PREFIX + "LockAccount", SERVICE_PREFIX + "UnlockAccount"} == ADMIN_METHODS
    keys = parse_keys('{"a": {"secrets": ["s"]}, "b": {"secrets": ["s"], "scopes": ["admin"]}}')
    assert keys["a"].scopes == {"read", "write"}
    assert keys["b"].scopes == {"admin"}
