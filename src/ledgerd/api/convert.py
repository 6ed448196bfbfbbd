"""Mapping between ledgerd.v1 messages and domain values."""

from __future__ import annotations

import dataclasses
import time

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.holds import Hold, plain_type
from ledgerd.domain.model import AccountLock, Balance, ChangeRequest, ChangeType, JournalEntry
from ledgerd.domain.validation import (
    MAX_MEMO_CHARS,
    is_hold_type,
    validate_change,
    validate_hold_change,
    validate_lock_change,
    validate_transfer,
)
from ledgerd.errors import FieldViolation, InvalidArgument
from ledgerd.service import ChangeAnswer
from ledgerd.transfers import TransferAnswer
from ledgerd.v1 import balance_pb2 as pb


def change_from_proto(message: pb.ChangeBalanceRequest, now_ms: int = 0) -> ChangeRequest:
    """``now_ms``: acceptance time, a HOLD's ``timeout_ms`` counts from it.

    Raises: InvalidArgument: a malformed field, by name.
    """
    if is_hold_type(message.type):
        return validate_hold_change(
            request_id=message.request_id, user_id=message.user_id, currency=message.currency,
            change_type=message.type, amount=message.amount, memo=message.memo,
            hold_id=message.hold_id, expires_at_ms=message.expires_at_unix_ms,
            timeout_ms=message.timeout_ms, to_user_id=message.to_user_id,
            now_ms=now_ms or int(time.time() * 1000),
        )  # fmt: skip
    if message.hold_id or message.expires_at_unix_ms or message.timeout_ms or message.to_user_id:
        raise InvalidArgument("hold_id", "only a hold change names a hold, an expiry or to_user_id")
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
        lock=balance.lock,  # type: ignore[arg-type]  # AccountLock values are the wire values
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
        actor=entry.actor,
        lock_after=entry.lock_after,  # type: ignore[arg-type]
        hold_id=entry.hold_id,
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
        from_frozen=plain_type(debit.type, debit.transfer_id) is ChangeType.TRANSFER_OUT_FROZEN,
        memo=debit.memo,
    )
    if answer.from_balance is not None:
        transfer.from_balance.CopyFrom(balance_to_proto(answer.from_balance))
    if answer.to_balance is not None:
        transfer.to_balance.CopyFrom(balance_to_proto(answer.to_balance))
    return transfer


def lock_from_proto(message: pb.LockAccountRequest, actor: str) -> ChangeRequest:
    """The lock change a LockAccount asks for, made by ``actor`` (the signing key id).

    Raises:
        InvalidArgument: every malformed field, and a lock other than DEBITS or FULL.
    """
    lock_type = _LOCK_TYPES.get(message.lock)
    violations: list[FieldViolation] = []
    try:
        change = _lock_change(message, lock_type or ChangeType.LOCK_DEBITS)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    if lock_type is None:
        violations.append(
            FieldViolation("lock", "must be ACCOUNT_LOCK_DEBITS or ACCOUNT_LOCK_FULL")
        )
    if violations:
        raise InvalidArgument.of(violations)
    return dataclasses.replace(change, actor=actor[:MAX_MEMO_CHARS])


def unlock_from_proto(message: pb.UnlockAccountRequest, actor: str) -> ChangeRequest:
    """Raises: InvalidArgument: a malformed field, by name."""
    change = _lock_change(message, ChangeType.UNLOCK)
    return dataclasses.replace(change, actor=actor[:MAX_MEMO_CHARS])


_LOCK_TYPES = {
    int(AccountLock.DEBITS): ChangeType.LOCK_DEBITS,
    int(AccountLock.FULL): ChangeType.LOCK_FULL,
}


def _lock_change(
    message: pb.LockAccountRequest | pb.UnlockAccountRequest, change_type: ChangeType
) -> ChangeRequest:
    return validate_lock_change(
        request_id=message.request_id,
        user_id=message.user_id,
        currency=message.currency,
        change_type=change_type,
        memo=message.memo,
    )


def hold_to_proto(hold: Hold) -> pb.Hold:
    return pb.Hold(
        hold_id=hold.hold_id,
        user_id=hold.user_id,
        currency=hold.currency,
        amount=format_amount(hold.amount),
        captured=format_amount(hold.captured),
        remaining=format_amount(hold.remaining),
        state=int(hold.state),  # type: ignore[arg-type]  # HoldState values are the wire values
        expires_at_unix_ms=hold.expires_at_ms,
    )
