"""The wire form of a change in the event log: compact JSON via msgspec.

JSON (not a binary format) so operators can read a message with any Kafka
tool; amounts stay decimal strings so no reader rounds them.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from ledgerd.domain.amounts import format_amount, parse_amount, parse_decimal
from ledgerd.domain.model import (
    HOLD_CHANGE_TYPES,
    LOCK_CHANGE_TYPES,
    MAX_ATOMIC_LEGS,
    Balance,
    ChangeRequest,
    ChangeType,
)
from ledgerd.domain.validation import (
    validate_any_change_type,
    validate_any_request_id,
    validate_change,
    validate_change_type,
    validate_currency,
    validate_expire_request_id,
    validate_hold_leg,
    validate_leg,
    validate_lock_change,
    validate_memo,
    validate_request_id,
    validate_user_id,
)
from ledgerd.errors import InvalidArgument, PoisonMessage


class LegMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A further leg of an atomic group: the same user as the message's first leg."""

    request_id: str
    currency: str
    type: int
    amount: str
    memo: str = ""


class ChangeMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A change request as published from the outbox.

    ``accepted_at_ms`` is when its outbox row was committed, ``resent`` whether the
    sweep published it again; both are covered by the message's signature
    (``ledgerd.log.signing``) and tell the consumer whether it must check the
    request's outcome before applying it (``ledgerd.consumer.provenance``). Messages
    written before these fields existed decode with 0 and False.
    """

    request_id: str
    user_id: int
    currency: str
    type: int
    amount: str
    memo: str = ""
    accepted_at_ms: int = 0
    resent: bool = False
    # A transfer leg's transfer and other user (empty and 0 otherwise).
    transfer_id: str = ""
    counterparty_user_id: int = 0
    # The legs after the first of an atomic ChangeBalances, applied with it, all or none.
    # The group's id is the first leg's request id. (A ledgerd older than schema 5 ignores
    # this field: upgrade every consumer before the API accepts atomic batches.)
    more_legs: list[LegMessage] | None = None
    # A lock change's actor (the signing key id); left out of every other message.
    actor: str | msgspec.UnsetType = msgspec.UNSET
    # A hold change's hold, and a HOLD's expiry (Unix ms); left out of every other message.
    hold_id: str | msgspec.UnsetType = msgspec.UNSET
    expires_at_ms: int | msgspec.UnsetType = msgspec.UNSET


@dataclass(frozen=True, slots=True)
class DecodedChange:
    """A message as read from the log (one change, or the legs of an atomic group), with
    where and when it came from."""

    requests: tuple[ChangeRequest, ...]
    accepted_at_ms: int
    resent: bool

    @property
    def request(self) -> ChangeRequest:
        return self.requests[0]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ChangeMessage)


def encode_change(
    request: ChangeRequest,
    *,
    accepted_at_ms: int = 0,
    resent: bool = False,
    more_legs: Sequence[ChangeRequest] = (),
) -> bytes:
    """One message: a change, or the legs of an atomic group (``request`` first)."""
    return _encoder.encode(
        ChangeMessage(
            request_id=request.request_id,
            user_id=request.user_id,
            currency=request.currency,
            type=int(request.type),
            amount=format_amount(request.amount),
            memo=request.memo,
            accepted_at_ms=accepted_at_ms,
            resent=resent,
            transfer_id=request.transfer_id,
            counterparty_user_id=request.counterparty_user_id,
            more_legs=[
                LegMessage(
                    leg.request_id, leg.currency, int(leg.type), format_amount(leg.amount), leg.memo
                )
                for leg in more_legs
            ]
            if more_legs
            else None,
            actor=request.actor or msgspec.UNSET,
            hold_id=request.hold_id or msgspec.UNSET,
            expires_at_ms=request.expires_at_ms or msgspec.UNSET,
        )
    )


def encode_group(
    legs: Sequence[ChangeRequest], *, accepted_at_ms: int = 0, resent: bool = False
) -> bytes:
    """A change (one leg) or an atomic group's legs, in leg order, as one message."""
    return encode_change(legs[0], accepted_at_ms=accepted_at_ms, resent=resent, more_legs=legs[1:])


def decode_change(value: bytes) -> ChangeRequest:
    """Decode and validate a change message.

    Raises:
        PoisonMessage: the bytes are not a valid change.
    """
    return decode_message(value).request


def decode_message(value: bytes) -> DecodedChange:
    """Decode and validate a change message, with its acceptance time and resend flag.

    Raises:
        PoisonMessage: the bytes are not a valid change.
    """
    try:
        message = _decoder.decode(value)
        return DecodedChange(_legs(message), message.accepted_at_ms, message.resent)
    except msgspec.DecodeError as exc:
        raise PoisonMessage(f"undecodable change message: {exc}") from exc
    except InvalidArgument as exc:
        raise PoisonMessage(f"invalid change message: {exc}") from exc


def _legs(message: ChangeMessage) -> tuple[ChangeRequest, ...]:
    """The message's changes, validated; the legs of an atomic group name it and their place."""
    if message.type in _HOLD_TYPE_NUMBERS:
        return (_hold_change(message),)
    if message.transfer_id or message.counterparty_user_id:
        leg = dataclasses.replace(
            _change(message, message.user_id, check_type=validate_any_change_type,
                    check_request_id=validate_any_request_id),
            transfer_id=message.transfer_id,
            counterparty_user_id=message.counterparty_user_id,
        )  # fmt: skip
        if message.more_legs:
            raise InvalidArgument("more_legs", "a transfer leg is never part of an atomic group")
        return (validate_leg(leg),)
    if message.type in _LOCK_TYPE_NUMBERS:
        return (_lock_change(message),)
    # The hot path: a client's change, checked as the API checked it (a transfer leg's type
    # without its transfer is refused here).
    first = _change(message, message.user_id)
    if not message.more_legs:
        return (first,)
    if len(message.more_legs) >= MAX_ATOMIC_LEGS:
        raise InvalidArgument("more_legs", f"at most {MAX_ATOMIC_LEGS} legs in a group")
    group = first.request_id
    legs = [dataclasses.replace(first, atomic_group=group)]
    for index, more in enumerate(message.more_legs, start=1):
        leg = _change(more, first.user_id)
        legs.append(dataclasses.replace(leg, atomic_group=group, atomic_leg=index))
    return tuple(legs)


_LOCK_TYPE_NUMBERS = frozenset(int(kind) for kind in LOCK_CHANGE_TYPES)
_HOLD_TYPE_NUMBERS = frozenset(int(kind) for kind in HOLD_CHANGE_TYPES)


def _hold_change(message: ChangeMessage) -> ChangeRequest:
    """A hold change: alone in its message; its fields agree with its type."""
    if message.more_legs:
        raise InvalidArgument("more_legs", "a hold change is never part of an atomic group")
    check_id = (
        validate_expire_request_id
        if message.type == ChangeType.HOLD_EXPIRE
        else validate_request_id
    )
    if message.type in _NO_AMOUNT_TYPES:  # the consumer decides the remainder
        if message.amount != "0":
            raise InvalidArgument("amount", 'a release or expiry has amount "0"')
        amount = 0
    else:
        amount = parse_amount(message.amount)
    change = ChangeRequest(
        check_id(message.request_id), validate_user_id(message.user_id),
        validate_currency(message.currency), ChangeType(message.type), amount,
        validate_memo(message.memo),
    )  # fmt: skip
    hold_id = message.hold_id if isinstance(message.hold_id, str) else ""
    expires = message.expires_at_ms if isinstance(message.expires_at_ms, int) else 0
    return validate_hold_leg(
        dataclasses.replace(
            change,
            hold_id=hold_id,
            expires_at_ms=expires,
            transfer_id=message.transfer_id,
            counterparty_user_id=message.counterparty_user_id,
        )
    )


_NO_AMOUNT_TYPES = frozenset((int(ChangeType.HOLD_RELEASE), int(ChangeType.HOLD_EXPIRE)))


def _lock_change(message: ChangeMessage) -> ChangeRequest:
    """A lock change: alone in its message, amount "0"."""
    if message.more_legs:
        raise InvalidArgument("more_legs", "a lock change is never part of an atomic group")
    if message.amount != "0":
        raise InvalidArgument("amount", 'a lock change has amount "0"')
    change = validate_lock_change(
        request_id=message.request_id, user_id=message.user_id, currency=message.currency,
        change_type=message.type, memo=message.memo,
    )  # fmt: skip
    actor = message.actor if isinstance(message.actor, str) else ""
    return dataclasses.replace(change, actor=validate_memo(actor)) if actor else change


def _change(
    leg: ChangeMessage | LegMessage,
    user_id: int,
    *,
    check_type: Callable[[int], ChangeType] = validate_change_type,
    check_request_id: Callable[[str], str] = validate_request_id,
) -> ChangeRequest:
    return validate_change(
        request_id=leg.request_id, user_id=user_id, currency=leg.currency, change_type=leg.type,
        amount=leg.amount, memo=leg.memo, check_type=check_type,
        check_request_id=check_request_id,
    )  # fmt: skip


class BalanceMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One committed balance on the cache feed: the record format before balance batches.

    Still decoded (producers of a rolling upgrade may send it); ledgerd sends
    ``BalanceBatchMessage``.
    """

    user_id: int
    currency: str
    available: str
    frozen: str
    version: int


class BalanceBatchMessage(
    msgspec.Struct, frozen=True, array_like=True, tag="balances", forbid_unknown_fields=False
):
    """A batch's committed balances of one partition on the cache feed, as columns.

    Encoded as a JSON array whose first element is the tag ``"balances"``
    (``["balances", [user ids], [currencies], [available], [frozen], [versions]]``),
    so a reader tells it from a ``BalanceMessage`` (a JSON object) by its first byte.
    Later fields may be appended: older readers ignore them.
    """

    user_ids: list[int]
    currencies: list[str]
    available: list[str]
    frozen: list[str]
    versions: list[int]
    # Each balance's AccountLock value; null when no balance of the record is locked (and
    # missing in records of older writers), so unlocked accounts cost no list.
    locks: list[int] | None = None


# A feed record's balances at most: ~150 bytes each at the widest (20-digit user id and
# version, 16-character currency, two 39-character amounts), so a record stays near 300 kB,
# within Kafka's default 1 MB message limit.
FEED_RECORD_BALANCES_MAX = 2000

_balance_decoder = msgspec.json.Decoder(BalanceMessage)
_balance_batch_decoder = msgspec.json.Decoder(BalanceBatchMessage)


def encode_balance(balance: Balance) -> bytes:
    """The single-balance feed record (the format before batches; for tests of old records)."""
    return _encoder.encode(
        BalanceMessage(
            user_id=balance.user_id,
            currency=balance.currency,
            available=format_amount(balance.available),
            frozen=format_amount(balance.frozen),
            version=balance.version,
        )
    )


def encode_balances(balances: Sequence[Balance]) -> bytes:
    """One feed record holding these balances (of one partition; at most
    ``FEED_RECORD_BALANCES_MAX`` of them: the caller splits larger batches)."""
    locks = list(map(_LOCK, balances))
    return _encoder.encode(
        BalanceBatchMessage(
            list(map(_USER_ID, balances)),
            list(map(_CURRENCY, balances)),
            [format_amount(available) for available in map(_AVAILABLE, balances)],
            # Most frozen amounts are 0: its text without a call.
            [format_amount(frozen) if frozen else "0" for frozen in map(_FROZEN, balances)],
            list(map(_VERSION, balances)),
            locks if any(locks) else None,
        )
    )


# A balance's fields read by C-level getters, a column at a time.
_USER_ID = operator.attrgetter("user_id")
_CURRENCY = operator.attrgetter("currency")
_AVAILABLE = operator.attrgetter("available")
_FROZEN = operator.attrgetter("frozen")
_VERSION = operator.attrgetter("version")
_LOCK = operator.attrgetter("lock")


def decode_balances(value: bytes) -> list[Balance]:
    """The balances of a feed record, batch or single-balance, in record order.

    Raises:
        PoisonMessage: the bytes are neither.
    """
    if value[:1] != b"[":
        return [decode_balance(value)]
    try:
        message = _balance_batch_decoder.decode(value)
        columns = (
            message.user_ids, message.currencies, message.available, message.frozen,
            message.versions,
        )  # fmt: skip
        # strict: columns of different lengths raise ValueError (poison), not a short batch.
        balances = [
            Balance(user, currency, parse_decimal(available), parse_decimal(frozen), version)
            for user, currency, available, frozen, version in zip(*columns, strict=True)
        ]
        if message.locks is not None:
            balances = [
                dataclasses.replace(balance, lock=lock)
                for balance, lock in zip(balances, message.locks, strict=True)
            ]
        return balances
    except (msgspec.DecodeError, ValueError) as exc:
        raise PoisonMessage(f"undecodable balance batch: {exc}") from exc


# A feed balance as the cache stores it: (user id, currency, available, frozen, version,
# lock), the amounts as ``format_amount`` writes them.
FeedRow = tuple[int, str, str, str, int, int]
# Exactly the texts ``format_amount`` writes for amounts >= 0 (no leading zero, no trailing
# fractional zero, at most 18 fraction digits), one per line: a column of them is checked
# in one regex call and passed on as it is; any other column is parsed and formatted again.
_CANONICAL_AMOUNT = r"(?:0|[1-9][0-9]*)(?:\.[0-9]{0,17}[1-9])?"
_canonical_column = re.compile(f"(?:{_CANONICAL_AMOUNT}\n)*{_CANONICAL_AMOUNT}", re.ASCII).fullmatch


def _canonical(texts: list[str]) -> list[str]:
    """The amounts as ``format_amount`` writes them (raises ValueError for non-decimals)."""
    joined = "\n".join(texts)
    if joined.count("\n") == len(texts) - 1 and _canonical_column(joined) is not None:
        return texts
    return [format_amount(parse_decimal(text)) for text in texts]


def decode_balance_rows(value: bytes) -> list[FeedRow]:
    """``decode_balances`` as plain rows, amounts as text: what a cache write sends on, with
    no ``Balance`` made and no amount parsed (the hot path of the cache updater). The rows
    give the same balances, and the same text as ``format_amount`` of them.

    Raises:
        PoisonMessage: the bytes are not a feed record.
    """
    if value[:1] != b"[":
        balance = decode_balance(value)
        return [
            (
                balance.user_id, balance.currency, format_amount(balance.available),
                format_amount(balance.frozen), balance.version, balance.lock,
            )
        ]  # fmt: skip
    try:
        message = _balance_batch_decoder.decode(value)
        users = message.user_ids
        locks = [0] * len(users) if message.locks is None else message.locks
        available, frozen = _canonical(message.available), _canonical(message.frozen)
        # strict: columns of different lengths raise ValueError (poison), not a short batch.
        return list(
            zip(users, message.currencies, available, frozen, message.versions, locks, strict=True)
        )
    except (msgspec.DecodeError, ValueError) as exc:
        raise PoisonMessage(f"undecodable balance batch: {exc}") from exc


def decode_balance(value: bytes) -> Balance:
    """Decode a single-balance feed record (``BalanceMessage``).

    Raises:
        PoisonMessage: the bytes are not a balance.
    """
    try:
        message = _balance_decoder.decode(value)
        return Balance(
            message.user_id,
            message.currency,
            parse_decimal(message.available),
            parse_decimal(message.frozen),
            message.version,
        )
    except (msgspec.DecodeError, ValueError) as exc:
        raise PoisonMessage(f"undecodable balance message: {exc}") from exc
