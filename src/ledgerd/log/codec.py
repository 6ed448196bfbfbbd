"""The wire form of a change in the event log: compact JSON via msgspec.

JSON (not a binary format) so operators can read a message with any Kafka
tool; amounts stay decimal strings so no reader rounds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Balance, ChangeRequest
from ledgerd.domain.validation import validate_change
from ledgerd.errors import InvalidArgument, PoisonMessage


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


@dataclass(frozen=True, slots=True)
class DecodedChange:
    """A change as read from the log, with where and when it came from."""

    request: ChangeRequest
    accepted_at_ms: int
    resent: bool


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ChangeMessage)


def encode_change(
    request: ChangeRequest, *, accepted_at_ms: int = 0, resent: bool = False
) -> bytes:
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
        )
    )


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
        request = validate_change(
            request_id=message.request_id,
            user_id=message.user_id,
            currency=message.currency,
            change_type=message.type,
            amount=message.amount,
            memo=message.memo,
        )
        return DecodedChange(request, message.accepted_at_ms, message.resent)
    except msgspec.DecodeError as exc:
        raise PoisonMessage(f"undecodable change message: {exc}") from exc
    except InvalidArgument as exc:
        raise PoisonMessage(f"invalid change message: {exc}") from exc


class BalanceMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A committed balance on the cache feed (topic ``cache_feed_topic``), published by
    the consumer after each commit for cache updaters in any process."""

    user_id: int
    currency: str
    available: str
    frozen: str
    version: int


_balance_decoder = msgspec.json.Decoder(BalanceMessage)


def encode_balance(balance: Balance) -> bytes:
    return _encoder.encode(
        BalanceMessage(
            user_id=balance.user_id,
            currency=balance.currency,
            available=format_amount(balance.available),
            frozen=format_amount(balance.frozen),
            version=balance.version,
        )
    )


def decode_balance(value: bytes) -> Balance:
    """Decode a balance from the cache feed.

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
