"""A transfer's state, read from its legs (docs/api.md, Transfer).

A transfer T is up to three requests: the debit T (the source's partition), the
credit ``T~in`` that only an applied debit sends (the destination's partition),
and the return ``T~return`` that only a refused credit sends (back to the
source). Each is decided exactly once by its partition's consumer; the transfer's
status follows from their outcomes, wherever (in whichever shard) they are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ledgerd.domain.holds import plain_type
from ledgerd.domain.model import (
    CREDIT_SUFFIX,
    RETURN_SUFFIX,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    RejectReason,
    StoredRequest,
)
from ledgerd.store.base import Store


@dataclass(frozen=True, slots=True)
class TransferAnswer:
    """A transfer as an API answers it."""

    debit: ChangeRequest  # the transfer's fields: source, destination, amount, memo
    status: ChangeStatus
    reject_reason: RejectReason = RejectReason.NONE
    debited: bool = False
    from_balance: Balance | None = None
    to_balance: Balance | None = None
    duplicate: bool = False

    @property
    def request_id(self) -> str:
        return self.debit.request_id


def leg_ids(transfer_id: str) -> list[str]:
    return [transfer_id, transfer_id + CREDIT_SUFFIX, transfer_id + RETURN_SUFFIX]


def read_transfer(store: Store, transfer_id: str, duplicate: bool = False) -> TransferAnswer | None:
    """The transfer's current state; None if no transfer has this id (a ChangeBalance's id
    is not a transfer either)."""
    ids = leg_ids(transfer_id)
    stored = store.get_requests(ids)
    debit = stored.get(transfer_id)
    # A capture of a hold to another user is a transfer too (its debit from frozen).
    if (
        debit is None
        or not plain_type(debit.request.type, debit.request.transfer_id).is_transfer_debit
    ):
        return None
    applied = [rid for rid in ids if rid in stored and stored[rid].status is ChangeStatus.APPLIED]
    entries = store.get_journal_entries(applied) if applied else {}
    return transfer_answer(debit, stored, entries, duplicate)


def transfer_answer(
    debit: StoredRequest,
    legs: Mapping[str, StoredRequest],
    entries: Mapping[str, JournalEntry],
    duplicate: bool,
) -> TransferAnswer:
    """The transfer's status from its legs' outcomes (``legs`` by request id)."""
    transfer_id = debit.request.request_id
    credit = legs.get(transfer_id + CREDIT_SUFFIX)
    returned = legs.get(transfer_id + RETURN_SUFFIX)
    debit_entry = entries.get(transfer_id)
    credit_entry = entries.get(transfer_id + CREDIT_SUFFIX)
    answer = TransferAnswer(
        debit.request,
        ChangeStatus.PENDING,
        debited=debit.status is ChangeStatus.APPLIED,
        from_balance=debit_entry.balance_after if debit_entry else None,
        to_balance=credit_entry.balance_after if credit_entry else None,
        duplicate=duplicate,
    )
    if debit.status is ChangeStatus.REJECTED:
        return _with(answer, ChangeStatus.REJECTED, debit.reject_reason)
    if credit is not None and credit.status is ChangeStatus.APPLIED:
        return _with(answer, ChangeStatus.APPLIED)
    # A refused credit (overflow) is final once the amount is back with the source.
    credit_refused = credit is not None and credit.status is ChangeStatus.REJECTED
    if credit_refused and returned is not None and returned.status is ChangeStatus.APPLIED:
        assert credit is not None
        return _with(answer, ChangeStatus.REJECTED, credit.reject_reason)
    return answer


def _with(
    answer: TransferAnswer, status: ChangeStatus, reason: RejectReason = RejectReason.NONE
) -> TransferAnswer:
    return dataclasses.replace(answer, status=status, reject_reason=reason)
