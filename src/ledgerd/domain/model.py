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
    SPEND_FROZEN = 5
    # The legs of a transfer: made by the service, never accepted from a ChangeBalance.
    TRANSFER_OUT = 6
    TRANSFER_OUT_FROZEN = 7
    TRANSFER_IN = 8
    TRANSFER_RETURN = 9
    # An account's lock (``AccountLock``), set by LockAccount / UnlockAccount: amount 0,
    # always applied (a lock never blocks the next lock change), one version like any change.
    LOCK_DEBITS = 10
    LOCK_FULL = 11
    UNLOCK = 12
    # Holds (``ledgerd.domain.holds``): a HOLD's request id is its hold's id; the others
    # name the hold (``ChangeRequest.hold_id``). HOLD_EXPIRE is made by the expiry sweep.
    HOLD = 13
    HOLD_CAPTURE = 14
    HOLD_RELEASE = 15
    HOLD_EXPIRE = 16

    @property
    def is_hold_change(self) -> bool:
        return self >= ChangeType.HOLD

    @property
    def is_transfer_leg(self) -> bool:
        return ChangeType.TRANSFER_OUT <= self <= ChangeType.TRANSFER_RETURN

    @property
    def is_lock_change(self) -> bool:
        return ChangeType.LOCK_DEBITS <= self <= ChangeType.UNLOCK

    @property
    def is_transfer_debit(self) -> bool:
        return self in (ChangeType.TRANSFER_OUT, ChangeType.TRANSFER_OUT_FROZEN)


# What a client may send to ChangeBalance(s); the rest are transfer legs.
CLIENT_CHANGE_TYPES = (
    ChangeType.DEPOSIT,
    ChangeType.WITHDRAW,
    ChangeType.FREEZE,
    ChangeType.UNFREEZE,
    ChangeType.SPEND_FROZEN,
)


class AccountLock(enum.IntEnum):
    """What a locked account refuses; wire values of ``ledgerd.v1.AccountLock``.

    ``DEBITS`` refuses every change that takes money out of the account or out of reach
    of its owner's spending (WITHDRAW, FREEZE, SPEND_FROZEN, TRANSFER_OUT,
    TRANSFER_OUT_FROZEN); credits and UNFREEZE still apply. ``FULL`` refuses every
    change but a transfer's return (the account's own money coming back).
    """

    NONE = 0
    DEBITS = 1
    FULL = 2


# The lock each lock change sets.
LOCK_SET_BY = {
    ChangeType.LOCK_DEBITS: AccountLock.DEBITS,
    ChangeType.LOCK_FULL: AccountLock.FULL,
    ChangeType.UNLOCK: AccountLock.NONE,
}
LOCK_CHANGE_TYPES = tuple(LOCK_SET_BY)
# What a client may send to ChangeBalance(s) about holds (never in an atomic group).
CLIENT_HOLD_TYPES = (ChangeType.HOLD, ChangeType.HOLD_CAPTURE, ChangeType.HOLD_RELEASE)
HOLD_CHANGE_TYPES = (*CLIENT_HOLD_TYPES, ChangeType.HOLD_EXPIRE)
# The request id of a hold's expiry: the hold's id and a suffix no client id can have, so
# every sweep (any leader, after any crash) sends the same request and it applies once.
EXPIRE_SUFFIX = "~expire"

# The request ids of a transfer's later legs: the transfer's id and a suffix that no client
# request id can have ("~" is outside their alphabet), so they never collide.
CREDIT_SUFFIX = "~in"
RETURN_SUFFIX = "~return"


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
    ACCOUNT_LOCKED = 4
    HOLD_NOT_FOUND = 5
    HOLD_RELEASED = 6
    HOLD_EXPIRED = 7
    HOLD_OVER_CAPTURE = 8
    HOLD_CAPTURED = 9


@dataclass(frozen=True, slots=True)
class Account:
    """A (user, currency) pair: the unit of ordering and of balance."""

    user_id: int
    currency: str


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """A validated request to change one account. ``amount`` is in scaled units.

    A transfer leg names its transfer (``transfer_id``, the transfer's request id) and the
    other user (``counterparty_user_id``). A lock change (``ChangeType.is_lock_change``)
    has amount 0. The legs of an atomic ChangeBalances share
    ``atomic_group`` (the first leg's request id) and are numbered by ``atomic_leg``.
    """

    request_id: str
    user_id: int
    currency: str
    type: ChangeType
    amount: int
    memo: str = ""
    transfer_id: str = ""
    counterparty_user_id: int = 0
    atomic_group: str = ""
    atomic_leg: int = 0
    # Who asked for a lock change: the signing key id (empty with signing off, and for
    # every other change). Not a field of the change: a retry by another key is the same.
    actor: str = ""
    # A hold change's hold (a HOLD's own request id), and a HOLD's expiry (Unix ms).
    hold_id: str = ""
    expires_at_ms: int = 0

    @property
    def account(self) -> Account:
        return Account(self.user_id, self.currency)

    def same_fields(self, other: ChangeRequest) -> bool:
        """Whether a retry carries the same change (request_id aside).

        A HOLD's expiry is left out (a retry with a timeout computes another instant), and
        so is a release's amount (the journal records the remainder it released).
        """
        return (
            self.user_id == other.user_id
            and self.currency == other.currency
            and self.type == other.type
            and (
                self.amount == other.amount
                or self.type in (ChangeType.HOLD_RELEASE, ChangeType.HOLD_EXPIRE)
            )
            and self.memo == other.memo
            and self.transfer_id == other.transfer_id
            and self.counterparty_user_id == other.counterparty_user_id
            and self.hold_id == other.hold_id
        )

    def credit(self) -> ChangeRequest:
        """The credit an applied transfer debit sends to the destination."""
        return ChangeRequest(
            self.transfer_id + CREDIT_SUFFIX, self.counterparty_user_id, self.currency,
            ChangeType.TRANSFER_IN, self.amount, self.memo, self.transfer_id, self.user_id,
        )  # fmt: skip

    def returned(self) -> ChangeRequest:
        """The return a refused transfer credit sends back to the source."""
        return ChangeRequest(
            self.transfer_id + RETURN_SUFFIX, self.counterparty_user_id, self.currency,
            ChangeType.TRANSFER_RETURN, self.amount, self.memo, self.transfer_id, self.user_id,
        )  # fmt: skip


# Legs one log message may carry (an atomic ChangeBalances has at most MAX_ATOMIC_LEGS).
LEGS_PER_MESSAGE = 1024
MAX_ATOMIC_LEGS = 100


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's amounts (scaled units), its version (count of applied changes) and
    its lock (an ``AccountLock`` value)."""

    user_id: int
    currency: str
    available: int = 0
    frozen: int = 0
    version: int = 0
    lock: int = 0

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
    transfer_id: str = ""
    counterparty_user_id: int = 0
    # Where the entry stands in its partition's event stream (``ledgerd.events``): the
    # log offset of the message that applied it, times LEGS_PER_MESSAGE, plus its leg.
    # 0 for entries read without it, and for entries journaled before schema 5.
    partition: int = 0
    event_seq: int = 0
    # A lock change's ``ChangeRequest.actor``; empty for every other entry.
    actor: str = ""
    # The account's lock right after the change (an ``AccountLock`` value).
    lock_after: int = 0
    # A hold change's hold (``ChangeRequest.hold_id``); empty for every other entry.
    hold_id: str = ""

    def as_stored_request(self) -> StoredRequest:
        """The APPLIED request this entry records (its outbox row may be gone)."""
        request = ChangeRequest(
            self.request_id, self.user_id, self.currency, self.type, self.amount, self.memo,
            self.transfer_id, self.counterparty_user_id, hold_id=self.hold_id,
        )  # fmt: skip
        return StoredRequest(request, ChangeStatus.APPLIED)

    @property
    def balance_after(self) -> Balance:
        return Balance(
            self.user_id, self.currency, self.available_after, self.frozen_after, self.version,
            self.lock_after,
        )  # fmt: skip


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
