"""The wire form of a change in the event log: compact JSON via msgspec.

JSON (not a binary format) so operators can read a message with any Kafka
tool; amounts stay decimal strings so no reader rounds them.
"""

from __future__ import annotations

import msgspec

from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Balance, ChangeRequest
from ledgerd.domain.validation import validate_change
from ledgerd.errors import InvalidArgument, PoisonMessage


class ChangeMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A change request as published by the relay."""

    request_id: str
    user_id: int
    currency: str
    type: int
    amount: str
    memo: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ChangeMessage)


def encode_change(request: ChangeRequest) -> bytes:
    return _encoder.encode(
        ChangeMessage(
            request_id=request.request_id,
            user_id=request.user_id,
            currency=request.currency,
            type=int(request.type),
            amount=format_amount(request.amount),
            memo=request.memo,
        )
    )


def decode_change(value: bytes) -> ChangeRequest:
    """Decode and validate a change message.

    Raises:
        PoisonMessage: the bytes are not a valid change.
    """
    try:
        message = _decoder.decode(value)
        return validate_change(
            request_id=message.request_id,
            user_id=message.user_id,
            currency=message.currency,
            change_type=message.type,
            amount=message.amount,
            memo=message.memo,
        )
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
