"""Holds: an amount frozen under a hold id until captured, released or expired (pure).

A hold is opened by a HOLD change (its request id is the hold's id) and lives in its
account's partition, so every change that names it is decided by the one writer of
that account, in log order. What wins between a capture and the expiry is therefore
the log's order: the sweep's HOLD_EXPIRE is a change like any other, and the consumer
never looks at a clock to decide it.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from ledgerd.domain.model import Balance, ChangeRequest, ChangeType, RejectReason
from ledgerd.domain.rules import Rejected, apply_change, refused_by_lock


class HoldState(enum.IntEnum):
    """Wire values of ``ledgerd.v1.HoldState``."""

    OPEN = 1
    CAPTURED = 2
    RELEASED = 3
    EXPIRED = 4


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold's amounts (scaled units), its state and expiry (Unix ms)."""

    hold_id: str
    user_id: int
    currency: str
    amount: int
    captured: int
    state: HoldState
    expires_at_ms: int
    created_at_ms: int = 0
    updated_at_ms: int = 0

    @property
    def remaining(self) -> int:
        """What is still held: nothing once the hold is closed."""
        return self.amount - self.captured if self.state is HoldState.OPEN else 0


# Why a closed hold refuses a capture, and a release (or expiry).
_CAPTURE_REFUSED = {
    HoldState.CAPTURED: RejectReason.HOLD_OVER_CAPTURE,
    HoldState.RELEASED: RejectReason.HOLD_RELEASED,
    HoldState.EXPIRED: RejectReason.HOLD_EXPIRED,
}
_RELEASE_REFUSED = {
    HoldState.CAPTURED: RejectReason.HOLD_CAPTURED,
    HoldState.RELEASED: RejectReason.HOLD_RELEASED,
    HoldState.EXPIRED: RejectReason.HOLD_EXPIRED,
}


@dataclass(frozen=True, slots=True)
class HoldApplied:
    """The hold change fits: the account's new balance, the hold after it, and the amount
    the journal records (a release's or expiry's remainder)."""

    balance: Balance
    hold: Hold
    amount: int


def apply_hold_change(
    balance: Balance, hold: Hold | None, change: ChangeRequest, now_ms: int
) -> HoldApplied | Rejected:
    """Apply a hold change (``ChangeType.is_hold_change``) to its account and hold.

    ``hold`` is the stored hold named by ``change.hold_id`` (None if there is none);
    ``now_ms`` only stamps the hold's times, it decides nothing. A lock refuses first
    (``refused_by_lock`` on the hold change's own type: a HOLD and a capture are debits,
    a release is not, an expiry passes even a full lock); then the hold's state; then the
    amounts, as the FREEZE, SPEND_FROZEN, TRANSFER_OUT_FROZEN or UNFREEZE it amounts to.
    """
    kind = change.type
    if balance.lock and refused_by_lock(balance.lock, kind):
        return Rejected(RejectReason.ACCOUNT_LOCKED)
    if kind is ChangeType.HOLD:
        return _open(balance, change, now_ms)
    if hold is None or hold.user_id != change.user_id or hold.currency != change.currency:
        return Rejected(RejectReason.HOLD_NOT_FOUND)
    if kind is ChangeType.HOLD_CAPTURE:
        return _capture(balance, hold, change, now_ms)
    return _release(balance, hold, change, now_ms)


def _open(balance: Balance, change: ChangeRequest, now_ms: int) -> HoldApplied | Rejected:
    """A HOLD: a FREEZE, and a new open hold."""
    result = _amounts(balance, change, ChangeType.FREEZE, change.amount)
    if isinstance(result, Rejected):
        return result
    opened = Hold(
        change.request_id, change.user_id, change.currency, change.amount, 0,
        HoldState.OPEN, change.expires_at_ms, now_ms, now_ms,
    )  # fmt: skip
    return HoldApplied(result, opened, change.amount)


def _capture(
    balance: Balance, hold: Hold, change: ChangeRequest, now_ms: int
) -> HoldApplied | Rejected:
    """Part or all of an open hold: to the holder's spend (SPEND_FROZEN) or, naming another
    user, as a transfer's debit from frozen (TRANSFER_OUT_FROZEN)."""
    refused = _CAPTURE_REFUSED.get(hold.state)
    if refused is None and change.amount > hold.remaining:
        refused = RejectReason.HOLD_OVER_CAPTURE
    if refused is not None:
        return Rejected(refused)
    as_type = (
        ChangeType.TRANSFER_OUT_FROZEN if change.counterparty_user_id else ChangeType.SPEND_FROZEN
    )
    result = _amounts(balance, change, as_type, change.amount)
    if isinstance(result, Rejected):
        return result
    captured = hold.captured + change.amount
    state = HoldState.CAPTURED if captured == hold.amount else HoldState.OPEN
    after = dataclasses.replace(hold, captured=captured, state=state, updated_at_ms=now_ms)
    return HoldApplied(result, after, change.amount)


def _release(
    balance: Balance, hold: Hold, change: ChangeRequest, now_ms: int
) -> HoldApplied | Rejected:
    """HOLD_RELEASE or HOLD_EXPIRE: the open hold's remainder back to available (UNFREEZE).

    An expiry releases at most the account's frozen amount (a client's UNFREEZE or
    SPEND_FROZEN may have taken some of the hold's) and always closes the hold: it is sent
    once, so a refused one would leave the hold open, and the sweep finding it, for ever.
    """
    refused = _RELEASE_REFUSED.get(hold.state)
    if refused is not None:
        return Rejected(refused)
    remainder = hold.remaining
    if change.type is ChangeType.HOLD_EXPIRE:
        remainder = min(remainder, balance.frozen)
    result = _amounts(balance, change, ChangeType.UNFREEZE, remainder)
    if isinstance(result, Rejected):
        return result
    state = HoldState.EXPIRED if change.type is ChangeType.HOLD_EXPIRE else HoldState.RELEASED
    after = dataclasses.replace(hold, state=state, updated_at_ms=now_ms)
    return HoldApplied(result, after, remainder)


def _amounts(
    balance: Balance, change: ChangeRequest, as_type: ChangeType, amount: int
) -> Balance | Rejected:
    """The balance after the plain change a hold change amounts to (the lock was checked
    on the hold change's type, so it is kept out of this check and put back after)."""
    plain = dataclasses.replace(change, type=as_type, amount=amount)
    result = apply_change(dataclasses.replace(balance, lock=0), plain)
    if isinstance(result, Rejected):
        return result
    return dataclasses.replace(result.balance, lock=balance.lock)


# What each hold change amounts to, for readers of the journal that know the plain types
# (the audit's replay, its money sums and transfer legs).
_PLAIN_TYPES = {
    ChangeType.HOLD: ChangeType.FREEZE,
    ChangeType.HOLD_CAPTURE: ChangeType.SPEND_FROZEN,
    ChangeType.HOLD_RELEASE: ChangeType.UNFREEZE,
    ChangeType.HOLD_EXPIRE: ChangeType.UNFREEZE,
}


def plain_type(kind: ChangeType, transfer_id: str = "") -> ChangeType:
    """The plain change a journal entry's type amounts to: a hold change's FREEZE,
    SPEND_FROZEN (a capture naming a transfer: TRANSFER_OUT_FROZEN) or UNFREEZE; any other
    type as it is."""
    if kind is ChangeType.HOLD_CAPTURE and transfer_id:
        return ChangeType.TRANSFER_OUT_FROZEN
    return _PLAIN_TYPES.get(kind, kind)
