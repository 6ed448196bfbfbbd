"""Field rules for incoming requests; each failure names the field, and a request
with several bad fields hears of all of them at once (``FieldChecks``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from ledgerd.domain.amounts import parse_amount
from ledgerd.domain.model import ChangeRequest, ChangeType
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


def validate_user_id(user_id: int) -> int:
    if not 0 < user_id <= MAX_USER_ID:
        raise InvalidArgument("user_id", "must be a positive 64-bit integer")
    return user_id


def validate_currency(currency: str) -> str:
    if _CURRENCY.fullmatch(currency) is None:
        raise InvalidArgument("currency", "must be 1-16 characters of A-Z 0-9")
    return currency


def validate_change_type(value: int) -> ChangeType:
    try:
        return ChangeType(value)
    except ValueError:
        raise InvalidArgument("type", "must be DEPOSIT, WITHDRAW, FREEZE or UNFREEZE") from None


def validate_memo(memo: str) -> str:
    if len(memo) > MAX_MEMO_CHARS:
        raise InvalidArgument("memo", f"must be at most {MAX_MEMO_CHARS} characters")
    if "\x00" in memo:
        raise InvalidArgument("memo", "must not contain NUL characters")
    return memo


def validate_change(
    *, request_id: str, user_id: int, currency: str, change_type: int, amount: str, memo: str
) -> ChangeRequest:
    """Build a ChangeRequest from raw fields.

    Raises:
        InvalidArgument: every malformed field, by name, in field order.
    """
    fields = FieldChecks()
    change = ChangeRequest(
        request_id=fields.check(validate_request_id, request_id, ""),
        user_id=fields.check(validate_user_id, user_id, 0),
        currency=fields.check(validate_currency, currency, ""),
        type=fields.check(validate_change_type, change_type, ChangeType.DEPOSIT),
        amount=fields.check(parse_amount, amount, 0),
        memo=fields.check(validate_memo, memo, ""),
    )
    fields.raise_if_any()
    return change


def validate_journal_limit(limit: int) -> int:
    """0 means the default; otherwise 1..1000."""
    if limit == 0:
        return DEFAULT_JOURNAL_LIMIT
    if not 1 <= limit <= MAX_JOURNAL_LIMIT:
        raise InvalidArgument("limit", f"must be between 1 and {MAX_JOURNAL_LIMIT}")
    return limit
