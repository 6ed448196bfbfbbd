"""The four operations and their rejections (docs/architecture.md section 4)."""

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


def apply_change(balance: Balance, change: ChangeRequest) -> Applied | Rejected:
    """Apply one change to the account's balance, or say why it cannot be applied."""
    available, frozen, amount = balance.available, balance.frozen, change.amount
    if change.type is ChangeType.DEPOSIT:
        available += amount
    elif change.type is ChangeType.WITHDRAW:
        available -= amount
    elif change.type is ChangeType.FREEZE:
        available -= amount
        frozen += amount
    else:
        frozen -= amount
        available += amount
    if available < 0:
        return Rejected(RejectReason.INSUFFICIENT_AVAILABLE)
    if frozen < 0:
        return Rejected(RejectReason.INSUFFICIENT_FROZEN)
    if available > MAX_SCALED or frozen > MAX_SCALED:
        return Rejected(RejectReason.AMOUNT_OVERFLOW)
    return Applied(
        Balance(balance.user_id, balance.currency, available, frozen, balance.version + 1)
    )
