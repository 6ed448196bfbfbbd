"""Value types of the ledger: accounts, change requests, balances, journal entries."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChangeType(enum.IntEnum):
    """What a change does; the numbers are the wire values of ``ledgerd.v1.ChangeType``."""

    DEPOSIT = 1
    WITHDRAW = 2
    FREEZE = 3
    UNFREEZE = 4


class ChangeStatus(enum.IntEnum):
    """Where a request is in its life; wire values of ``ledgerd.v1.ChangeStatus``."""

    PENDING = 1
    SENT = 2
    APPLIED = 3
    REJECTED = 4
    FAILED = 5

    @property
    def is_final(self) -> bool:
        return self in (ChangeStatus.APPLIED, ChangeStatus.REJECTED)


class RejectReason(enum.IntEnum):
    """Why a change was refused; wire values of ``ledgerd.v1.RejectReason`` (0 = none)."""

    NONE = 0
    INSUFFICIENT_AVAILABLE = 1
    INSUFFICIENT_FROZEN = 2
    AMOUNT_OVERFLOW = 3


@dataclass(frozen=True, slots=True)
class Account:
    """A (user, currency) pair: the unit of ordering and of balance."""

    user_id: int
    currency: str


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """A validated request to change one account. ``amount`` is in scaled units."""

    request_id: str
    user_id: int
    currency: str
    type: ChangeType
    amount: int
    memo: str = ""

    @property
    def account(self) -> Account:
        return Account(self.user_id, self.currency)

    def same_fields(self, other: ChangeRequest) -> bool:
        """Whether a retry carries the same change (request_id aside)."""
        return (
            self.user_id == other.user_id
            and self.currency == other.currency
            and self.type == other.type
            and self.amount == other.amount
            and self.memo == other.memo
        )


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's amounts (scaled units) and its version (count of applied changes)."""

    user_id: int
    currency: str
    available: int = 0
    frozen: int = 0
    version: int = 0

    @property
    def account(self) -> Account:
        return Account(self.user_id, self.currency)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One applied change and the amounts right after it."""

    request_id: str
    user_id: int
    currency: str
    type: ChangeType
    amount: int
    available_after: int
    frozen_after: int
    version: int
    applied_at_ms: int
    memo: str = ""

    def as_stored_request(self) -> StoredRequest:
        """The APPLIED request this entry records (its outbox row may be gone)."""
        request = ChangeRequest(
            self.request_id, self.user_id, self.currency, self.type, self.amount, self.memo
        )
        return StoredRequest(request, ChangeStatus.APPLIED)

    @property
    def balance_after(self) -> Balance:
        return Balance(
            self.user_id, self.currency, self.available_after, self.frozen_after, self.version
        )


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A change request as the outbox holds it, with its current status."""

    request: ChangeRequest
    status: ChangeStatus
    reject_reason: RejectReason = RejectReason.NONE


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """The final status the consumer gives a request."""

    request_id: str
    status: ChangeStatus
    reject_reason: RejectReason = RejectReason.NONE


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request the consumer rejected: recorded once, with its fields, as its outcome."""

    request: ChangeRequest
    reason: RejectReason
