"""The operations and their rejections (docs/architecture.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass

from ledgerd.domain.amounts import MAX_SCALED
from ledgerd.domain.model import (
    LOCK_SET_BY,
    AccountLock,
    Balance,
    ChangeRequest,
    ChangeType,
    RejectReason,
)


@dataclass(frozen=True, slots=True)
class Applied:
    """The change fits: the account's new balance, one version later."""

    balance: Balance


@dataclass(frozen=True, slots=True)
class Rejected:
    """The change would break a rule and changes nothing."""

    reason: RejectReason


# Types that only add to available, and types that only take from it.
_CREDITS = frozenset((ChangeType.DEPOSIT, ChangeType.TRANSFER_IN, ChangeType.TRANSFER_RETURN))
_DEBITS = frozenset((ChangeType.WITHDRAW, ChangeType.TRANSFER_OUT))
_FROM_FROZEN = frozenset((ChangeType.SPEND_FROZEN, ChangeType.TRANSFER_OUT_FROZEN))
# What a debit lock refuses: every change that takes from available or frozen except
# UNFREEZE and a hold's release or expiry, which keep the money in the account (and
# available is locked too). A HOLD is a FREEZE, a capture a SPEND_FROZEN or a transfer out.
LOCKED_BY_DEBIT_LOCK = frozenset(
    (
        ChangeType.WITHDRAW,
        ChangeType.FREEZE,
        ChangeType.SPEND_FROZEN,
        ChangeType.TRANSFER_OUT,
        ChangeType.TRANSFER_OUT_FROZEN,
        ChangeType.HOLD,
        ChangeType.HOLD_CAPTURE,
    )
)
# What a full lock lets through: a transfer's return brings the account's own money back
# (refusing it would leave the amount in flight for ever), and a hold's expiry, which the
# sweep sends once under one request id (refused, the hold would stay open for ever).
PASSES_FULL_LOCK = frozenset((ChangeType.TRANSFER_RETURN, ChangeType.HOLD_EXPIRE))


def refused_by_lock(lock: int, kind: ChangeType) -> bool:
    """Whether an account locked so refuses a change of this type (lock changes never)."""
    if lock == AccountLock.DEBITS:
        return kind in LOCKED_BY_DEBIT_LOCK
    return lock == AccountLock.FULL and kind not in PASSES_FULL_LOCK and not kind.is_lock_change


def apply_change(balance: Balance, change: ChangeRequest) -> Applied | Rejected:
    """Apply one change to the account's balance, or say why it cannot be applied."""
    available, frozen, amount = balance.available, balance.frozen, change.amount
    kind = change.type
    lock = balance.lock
    if lock and refused_by_lock(lock, kind):
        return Rejected(RejectReason.ACCOUNT_LOCKED)
    if kind.is_lock_change:
        return Applied(
            Balance(
                balance.user_id, balance.currency, available, frozen, balance.version + 1,
                LOCK_SET_BY[kind],
            )
        )  # fmt: skip
    if kind in _CREDITS:
        available += amount
    elif kind in _DEBITS:
        available -= amount
    elif kind is ChangeType.FREEZE:
        available -= amount
        frozen += amount
    elif kind is ChangeType.UNFREEZE:
        frozen -= amount
        available += amount
    elif kind in _FROM_FROZEN:
        frozen -= amount
    else:  # a hold change: ``ledgerd.domain.holds.apply_hold_change`` decides it
        raise ValueError(f"{kind.name} is decided with its hold")
    if available < 0:
        return Rejected(RejectReason.INSUFFICIENT_AVAILABLE)
    if frozen < 0:
        return Rejected(RejectReason.INSUFFICIENT_FROZEN)
    if available > MAX_SCALED or frozen > MAX_SCALED:
        return Rejected(RejectReason.AMOUNT_OVERFLOW)
    return Applied(
        Balance(balance.user_id, balance.currency, available, frozen, balance.version + 1, lock)
    )
