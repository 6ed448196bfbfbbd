"""The operations and their rejections (docs/architecture.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass

from ledgerd.domain.amounts import MAX_SCALED
from ledgerd.domain.model import Balance, ChangeRequest, ChangeType, RejectReason


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


def apply_change(balance: Balance, change: ChangeRequest) -> Applied | Rejected:
    """Apply one change to the account's balance, or say why it cannot be applied."""
    available, frozen, amount = balance.available, balance.frozen, change.amount
    kind = change.type
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
    else:  # SPEND_FROZEN, TRANSFER_OUT_FROZEN
        frozen -= amount
    if available < 0:
        return Rejected(RejectReason.INSUFFICIENT_AVAILABLE)
    if frozen < 0:
        return Rejected(RejectReason.INSUFFICIENT_FROZEN)
    if available > MAX_SCALED or frozen > MAX_SCALED:
        return Rejected(RejectReason.AMOUNT_OVERFLOW)
    return Applied(
        Balance(balance.user_id, balance.currency, available, frozen, balance.version + 1)
    )
