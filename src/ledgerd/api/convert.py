"""Mapping between ledgerd.v1 messages and domain values."""

from __future__ import annotations

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import Balance, ChangeRequest, ChangeType, JournalEntry
from ledgerd.domain.validation import validate_change, validate_transfer
from ledgerd.service import ChangeAnswer
from ledgerd.transfers import TransferAnswer
from ledgerd.v1 import balance_pb2 as pb


def change_from_proto(message: pb.ChangeBalanceRequest) -> ChangeRequest:
    """Raises: InvalidArgument: a malformed field, by name."""
    return validate_change(
        request_id=message.request_id,
        user_id=message.user_id,
        currency=message.currency,
        change_type=message.type,
        amount=message.amount,
        memo=message.memo,
    )


def balance_to_proto(balance: Balance) -> pb.Balance:
    return pb.Balance(
        user_id=balance.user_id,
        currency=balance.currency,
        available=format_amount(balance.available),
        frozen=format_amount(balance.frozen),
        version=balance.version,
    )


def answer_to_proto(answer: ChangeAnswer) -> pb.ChangeResult:
    result = pb.ChangeResult(
        request_id=answer.request_id,
        status=int(answer.status),  # type: ignore[arg-type]  # IntEnum values are the wire values
        reject_reason=int(answer.reject_reason),  # type: ignore[arg-type]
        duplicate=answer.duplicate,
    )
    if answer.balance is not None:
        result.balance.CopyFrom(balance_to_proto(answer.balance))
    return result


def journal_to_proto(entry: JournalEntry) -> pb.JournalEntry:
    return pb.JournalEntry(
        request_id=entry.request_id,
        user_id=entry.user_id,
        currency=entry.currency,
        type=int(entry.type),  # type: ignore[arg-type]
        amount=format_amount(entry.amount),
        available_after=format_amount(entry.available_after),
        frozen_after=format_amount(entry.frozen_after),
        version=entry.version,
        applied_at_unix_ms=entry.applied_at_ms,
        memo=entry.memo,
        transfer_id=entry.transfer_id,
        counterparty_user_id=entry.counterparty_user_id,
    )


def transfer_from_proto(message: pb.TransferRequest) -> ChangeRequest:
    """The transfer's debit leg. Raises: InvalidArgument: every malformed field, by name."""
    return validate_transfer(
        request_id=message.request_id,
        from_user_id=message.from_user_id,
        to_user_id=message.to_user_id,
        currency=message.currency,
        amount=message.amount,
        from_frozen=message.from_frozen,
        memo=message.memo,
    )


def transfer_to_proto(answer: TransferAnswer) -> pb.Transfer:
    debit = answer.debit
    transfer = pb.Transfer(
        request_id=debit.request_id,
        status=int(answer.status),  # type: ignore[arg-type]
        reject_reason=int(answer.reject_reason),  # type: ignore[arg-type]
        duplicate=answer.duplicate,
        debited=answer.debited,
        from_user_id=debit.user_id,
        to_user_id=debit.counterparty_user_id,
        currency=debit.currency,
        amount=format_amount(debit.amount),
        from_frozen=debit.type is ChangeType.TRANSFER_OUT_FROZEN,
        memo=debit.memo,
    )
    if answer.from_balance is not None:
        transfer.from_balance.CopyFrom(balance_to_proto(answer.from_balance))
    if answer.to_balance is not None:
        transfer.to_balance.CopyFrom(balance_to_proto(answer.to_balance))
    return transfer
