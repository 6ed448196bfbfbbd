"""Field rules for incoming requests; each failure names the field, and a request
with several bad fields hears of all of them at once (``FieldChecks``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from ledgerd.domain.amounts import parse_amount
from ledgerd.domain.model import (
    CLIENT_CHANGE_TYPES,
    CLIENT_HOLD_TYPES,
    CREDIT_SUFFIX,
    EXPIRE_SUFFIX,
    LOCK_CHANGE_TYPES,
    MAX_ATOMIC_LEGS,
    RETURN_SUFFIX,
    ChangeRequest,
    ChangeType,
)
from ledgerd.errors import FieldViolation, InvalidArgument

V = TypeVar("V")
T = TypeVar("T")

MAX_USER_ID = 2**64 - 1
MAX_MEMO_CHARS = 256
MAX_BATCH_CHANGES = 10_000
MAX_JOURNAL_LIMIT = 1000
DEFAULT_JOURNAL_LIMIT = 100

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
_CURRENCY = re.compile(r"[A-Z0-9]{1,16}", re.ASCII)


class FieldChecks:
    """Runs every field's check of one request, collecting violations instead of stopping.

    ``check`` returns the validated value, or ``placeholder`` when the field is bad:
    a placeholder never escapes, because ``raise_if_any`` raises before the values are used.
    """

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def check(self, validate: Callable[[V], T], value: V, placeholder: T) -> T:
        try:
            return validate(value)
        except InvalidArgument as exc:
            self.violations.extend(exc.violations)
            return placeholder

    def raise_if_any(self) -> None:
        """Raises: InvalidArgument: every violation collected, in the order checked."""
        if self.violations:
            raise InvalidArgument.of(self.violations)


def validate_request_id(request_id: str) -> str:
    if _REQUEST_ID.fullmatch(request_id) is None:
        raise InvalidArgument("request_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    return request_id


def validate_any_request_id(request_id: str) -> str:
    """A request id a log message may carry: a client's, or a transfer leg's (its transfer's
    id and a suffix no client id can have)."""
    for suffix in (CREDIT_SUFFIX, RETURN_SUFFIX):
        if request_id.endswith(suffix):
            validate_request_id(request_id[: -len(suffix)])
            return request_id
    return validate_request_id(request_id)


def validate_expire_request_id(request_id: str) -> str:
    """A hold expiry's request id: the hold's id (a client request id) and ``~expire``."""
    if not request_id.endswith(EXPIRE_SUFFIX):
        raise InvalidArgument("request_id", "a hold's expiry is its hold's id and ~expire")
    validate_request_id(request_id[: -len(EXPIRE_SUFFIX)])
    return request_id


def validate_user_id(user_id: int) -> int:
    if not 0 < user_id <= MAX_USER_ID:
        raise InvalidArgument("user_id", "must be a positive 64-bit integer")
    return user_id


def validate_currency(currency: str) -> str:
    if _CURRENCY.fullmatch(currency) is None:
        raise InvalidArgument("currency", "must be 1-16 characters of A-Z 0-9")
    return currency


# Wire value -> type: one lookup per change, instead of a membership test and ChangeType().
_CLIENT_TYPES = {int(change_type): change_type for change_type in CLIENT_CHANGE_TYPES}


def validate_change_type(value: int) -> ChangeType:
    """A type a client may send: the transfer legs' types are made by Transfer only."""
    change_type = _CLIENT_TYPES.get(value)
    if change_type is None:
        raise InvalidArgument("type", "must be DEPOSIT, WITHDRAW, FREEZE, UNFREEZE or SPEND_FROZEN")
    return change_type


def validate_any_change_type(value: int) -> ChangeType:
    """Any type a log message may carry (a transfer's legs included)."""
    try:
        return ChangeType(value)
    except ValueError:
        raise InvalidArgument("type", f"unknown change type {value}") from None


def validate_memo(memo: str) -> str:
    if len(memo) > MAX_MEMO_CHARS:
        raise InvalidArgument("memo", f"must be at most {MAX_MEMO_CHARS} characters")
    if "\x00" in memo:
        raise InvalidArgument("memo", "must not contain NUL characters")
    return memo


def validate_change(
    *,
    request_id: str,
    user_id: int,
    currency: str,
    change_type: int,
    amount: str,
    memo: str,
    check_type: Callable[[int], ChangeType] = validate_change_type,
    check_request_id: Callable[[str], str] = validate_request_id,
) -> ChangeRequest:
    """Build a ChangeRequest from raw fields (``check_type`` and ``check_request_id``: which
    types and ids are allowed; a client's by default).

    Raises:
        InvalidArgument: every malformed field, by name, in field order.
    """
    try:
        # Valid, as nearly every change is (the consumer checks each one it applies):
        # the checks called directly. Otherwise again, collecting every violation.
        return ChangeRequest(
            check_request_id(request_id), validate_user_id(user_id), validate_currency(currency),
            check_type(change_type), parse_amount(amount), validate_memo(memo),
        )  # fmt: skip
    except InvalidArgument:
        pass
    fields = FieldChecks()
    change = ChangeRequest(
        request_id=fields.check(check_request_id, request_id, ""),
        user_id=fields.check(validate_user_id, user_id, 0),
        currency=fields.check(validate_currency, currency, ""),
        type=fields.check(check_type, change_type, ChangeType.DEPOSIT),
        amount=fields.check(parse_amount, amount, 0),
        memo=fields.check(validate_memo, memo, ""),
    )
    fields.raise_if_any()
    return change


_LOCK_TYPES = frozenset(LOCK_CHANGE_TYPES)


def validate_lock_change(
    *, request_id: str, user_id: int, currency: str, change_type: int, memo: str
) -> ChangeRequest:
    """A lock change (LOCK_DEBITS, LOCK_FULL, UNLOCK): an account and a memo, no amount.

    Raises:
        InvalidArgument: every malformed field, by name.
    """
    fields = FieldChecks()
    change = ChangeRequest(
        request_id=fields.check(validate_request_id, request_id, ""),
        user_id=fields.check(validate_user_id, user_id, 0),
        currency=fields.check(validate_currency, currency, ""),
        type=fields.check(_lock_type, change_type, ChangeType.UNLOCK),
        amount=0,
        memo=fields.check(validate_memo, memo, ""),
    )
    fields.raise_if_any()
    return change


def _lock_type(value: int) -> ChangeType:
    if value not in _LOCK_TYPES:
        raise InvalidArgument("type", "must be LOCK_DEBITS, LOCK_FULL or UNLOCK")
    return ChangeType(value)


def validate_transfer(
    *,
    request_id: str,
    from_user_id: int,
    to_user_id: int,
    currency: str,
    amount: str,
    from_frozen: bool,
    memo: str,
) -> ChangeRequest:
    """A transfer as its debit leg (request id = the transfer's id, user = the source).

    Raises:
        InvalidArgument: every malformed field, by name.
    """
    fields = FieldChecks()
    source = fields.check(_named("from_user_id", validate_user_id), from_user_id, 0)
    destination = fields.check(_named("to_user_id", validate_user_id), to_user_id, 0)
    if source and source == destination:
        fields.violations.append(FieldViolation("to_user_id", "must differ from from_user_id"))
    transfer_id = fields.check(validate_request_id, request_id, "")
    debit = ChangeRequest(
        request_id=transfer_id,
        user_id=source,
        currency=fields.check(validate_currency, currency, ""),
        type=ChangeType.TRANSFER_OUT_FROZEN if from_frozen else ChangeType.TRANSFER_OUT,
        amount=fields.check(parse_amount, amount, 0),
        memo=fields.check(validate_memo, memo, ""),
        transfer_id=transfer_id,
        counterparty_user_id=destination,
    )
    fields.raise_if_any()
    return debit


def validate_leg(change: ChangeRequest) -> ChangeRequest:
    """A change read from the log that names a transfer is one of its legs: its type, id
    and counterparty agree.

    Raises:
        InvalidArgument: they do not (the message was not made by ledgerd).
    """
    if not change.type.is_transfer_leg:
        raise InvalidArgument("transfer_id", "only a transfer leg names a transfer")
    suffix = {
        ChangeType.TRANSFER_IN: CREDIT_SUFFIX,
        ChangeType.TRANSFER_RETURN: RETURN_SUFFIX,
    }.get(change.type, "")
    if change.request_id != validate_request_id(change.transfer_id) + suffix:
        raise InvalidArgument("request_id", "does not match the leg of its transfer")
    validate_user_id(change.counterparty_user_id)
    if change.counterparty_user_id == change.user_id:
        raise InvalidArgument("counterparty_user_id", "must differ from user_id")
    return change


def validate_atomic(changes: Sequence[ChangeRequest]) -> None:
    """An atomic ChangeBalances: one user, at most MAX_ATOMIC_LEGS changes.

    Raises:
        InvalidArgument: every item of another user than the first, or too many items.
    """
    if len(changes) > MAX_ATOMIC_LEGS:
        raise InvalidArgument("changes", f"at most {MAX_ATOMIC_LEGS} changes when atomic")
    violations = [
        FieldViolation(f"changes[{index}].user_id", "must be the same user in an atomic batch")
        for index, change in enumerate(changes)
        if change.user_id != changes[0].user_id
    ]
    seen: set[str] = set()
    for index, change in enumerate(changes):
        if change.request_id in seen:
            violations.append(
                FieldViolation(f"changes[{index}].request_id", "repeated in an atomic batch")
            )
        seen.add(change.request_id)
    if violations:
        raise InvalidArgument.of(violations)


def _named(field: str, validate: Callable[[int], int]) -> Callable[[int], int]:
    """``validate`` reporting its violation under another field name."""

    def check(value: int) -> int:
        try:
            return validate(value)
        except InvalidArgument as exc:
            raise InvalidArgument(field, exc.violations[0].description) from None

    return check


def validate_journal_limit(limit: int) -> int:
    """0 means the default; otherwise 1..1000."""
    if limit == 0:
        return DEFAULT_JOURNAL_LIMIT
    if not 1 <= limit <= MAX_JOURNAL_LIMIT:
        raise InvalidArgument("limit", f"must be between 1 and {MAX_JOURNAL_LIMIT}")
    return limit


_CLIENT_HOLD_TYPES = frozenset(CLIENT_HOLD_TYPES)
# The longest a hold may last: a year. Longer is more likely a unit mistake (s for ms).
MAX_HOLD_MS = 366 * 24 * 3600 * 1000


def is_hold_type(value: int) -> bool:
    """Whether a ChangeBalance's type asks for a hold change (``validate_hold_change``)."""
    return value in _CLIENT_HOLD_TYPES


def validate_hold_change(
    *,
    request_id: str,
    user_id: int,
    currency: str,
    change_type: int,
    amount: str,
    memo: str,
    hold_id: str,
    expires_at_ms: int,
    timeout_ms: int,
    to_user_id: int,
    now_ms: int,
) -> ChangeRequest:
    """A HOLD, HOLD_CAPTURE or HOLD_RELEASE from a client.

    A HOLD's hold id is its request id, its expiry ``expires_at_ms`` or ``now_ms`` plus
    ``timeout_ms`` (exactly one, in the future, within ``MAX_HOLD_MS``). A capture names
    its hold and an amount, and may credit ``to_user_id`` instead of spending (a transfer
    whose id is the capture's request id). A release names its hold and no amount.

    Raises:
        InvalidArgument: every malformed field, by name.
    """
    fields = FieldChecks()
    kind = ChangeType(change_type)
    rid = fields.check(validate_request_id, request_id, "")
    user = fields.check(validate_user_id, user_id, 0)
    change = ChangeRequest(
        request_id=rid,
        user_id=user,
        currency=fields.check(validate_currency, currency, ""),
        type=kind,
        amount=0,
        memo=fields.check(validate_memo, memo, ""),
    )
    if kind is ChangeType.HOLD_RELEASE:
        if amount not in ("", "0"):
            fields.violations.append(FieldViolation("amount", "a release has no amount"))
    else:
        change = dataclasses.replace(change, amount=fields.check(parse_amount, amount, 0))
    if kind is ChangeType.HOLD:
        if hold_id not in ("", request_id):
            fields.violations.append(
                FieldViolation("hold_id", "a HOLD's hold id is its request id: leave it empty")
            )
        expiry = _hold_expiry(fields, expires_at_ms, timeout_ms, now_ms)
        change = dataclasses.replace(change, hold_id=rid, expires_at_ms=expiry)
    else:
        if expires_at_ms or timeout_ms:
            fields.violations.append(
                FieldViolation("expires_at_unix_ms", "only a HOLD has an expiry")
            )
        change = dataclasses.replace(
            change, hold_id=fields.check(_named_id("hold_id"), hold_id, "")
        )
    if to_user_id:
        if kind is not ChangeType.HOLD_CAPTURE:
            fields.violations.append(FieldViolation("to_user_id", "only a capture has one"))
        elif to_user_id == user:
            fields.violations.append(FieldViolation("to_user_id", "must differ from user_id"))
        else:
            destination = fields.check(_named("to_user_id", validate_user_id), to_user_id, 0)
            change = dataclasses.replace(change, transfer_id=rid, counterparty_user_id=destination)
    fields.raise_if_any()
    return change


def _named_id(field: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if _REQUEST_ID.fullmatch(value) is None:
            raise InvalidArgument(field, "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        return value

    return check


def validate_hold_leg(change: ChangeRequest) -> ChangeRequest:
    """A hold change read from the log: its fields agree with its type.

    Raises:
        InvalidArgument: they do not (the message was not made by ledgerd).
    """
    kind = change.type
    if kind is ChangeType.HOLD and (
        change.hold_id != change.request_id or change.expires_at_ms <= 0
    ):
        raise InvalidArgument("hold_id", "a HOLD is its own hold, with an expiry")
    if kind is ChangeType.HOLD_EXPIRE and change.request_id != change.hold_id + EXPIRE_SUFFIX:
        raise InvalidArgument("request_id", "a hold's expiry is its hold's id and ~expire")
    if change.transfer_id and (
        kind is not ChangeType.HOLD_CAPTURE or change.transfer_id != change.request_id
    ):
        raise InvalidArgument("transfer_id", "only a capture to another user names a transfer")
    if change.counterparty_user_id == change.user_id:
        raise InvalidArgument("counterparty_user_id", "must differ from user_id")
    if kind is not ChangeType.HOLD:
        _named_id("hold_id")(change.hold_id)
    return change


def _hold_expiry(fields: FieldChecks, expires_at_ms: int, timeout_ms: int, now_ms: int) -> int:
    """A HOLD's expiry (Unix ms): exactly one of the two, in the future, within a year."""
    if (expires_at_ms > 0) == (timeout_ms > 0):
        fields.violations.append(
            FieldViolation(
                "expires_at_unix_ms",
                "a HOLD needs exactly one of expires_at_unix_ms and timeout_ms",
            )
        )
    if timeout_ms > MAX_HOLD_MS:
        fields.violations.append(FieldViolation("timeout_ms", "must be at most a year"))
    if expires_at_ms <= 0:
        return now_ms + timeout_ms
    if not now_ms < expires_at_ms <= now_ms + MAX_HOLD_MS:
        fields.violations.append(
            FieldViolation("expires_at_unix_ms", "must be in the future, within a year")
        )
    return expires_at_ms
