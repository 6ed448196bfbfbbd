"""Journal entries for the audit's unit tests: a transfer's legs as the consumer journals
them (the amounts after each change do not matter to the money and transfer checks)."""

from __future__ import annotations

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType, JournalEntry

SOURCE, DESTINATION = 1, 2
APPLIED_AT_MS = 1_000_000


def entry(
    kind: ChangeType,
    units: int,
    *,
    user: int = SOURCE,
    currency: str = "USD",
    request_id: str = "r",
    at_ms: int = APPLIED_AT_MS,
) -> JournalEntry:
    """A change outside any transfer."""
    return JournalEntry(request_id, user, currency, kind, units * SCALE, 0, 0, 1, at_ms)


def debit(
    transfer_id: str = "T",
    units: int = 5,
    *,
    frozen: bool = False,
    currency: str = "USD",
    at_ms: int = APPLIED_AT_MS,
) -> JournalEntry:
    """The debit of a transfer from SOURCE to DESTINATION."""
    kind = ChangeType.TRANSFER_OUT_FROZEN if frozen else ChangeType.TRANSFER_OUT
    request = ChangeRequest(
        transfer_id, SOURCE, currency, kind, units * SCALE, "", transfer_id, DESTINATION
    )
    return leg(request, at_ms)


def leg(request: ChangeRequest, at_ms: int = APPLIED_AT_MS) -> JournalEntry:
    """The journal entry of a transfer leg, as the consumer writes it."""
    return JournalEntry(
        request.request_id, request.user_id, request.currency, request.type, request.amount,
        0, 0, 1, at_ms, request.memo, request.transfer_id, request.counterparty_user_id,
    )  # fmt: skip


def as_request(entry: JournalEntry) -> ChangeRequest:
    return entry.as_stored_request().request


def credit_of(debit_entry: JournalEntry) -> JournalEntry:
    return leg(as_request(debit_entry).credit(), debit_entry.applied_at_ms + 1)


def refused_credit_of(debit_entry: JournalEntry) -> ChangeRequest:
    """The credit as its rejection records it."""
    return as_request(debit_entry).credit()


def return_of(debit_entry: JournalEntry) -> JournalEntry:
    credit = as_request(debit_entry).credit()
    return leg(credit.returned(), debit_entry.applied_at_ms + 2)
