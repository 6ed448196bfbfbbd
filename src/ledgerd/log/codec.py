"""The wire form of a change in the event log: compact JSON via msgspec.

JSON (not a binary format) so operators can read a message with any Kafka
tool; amounts stay decimal strings so no reader rounds them.
"""

from __future__ import annotations

import msgspec

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import ChangeRequest
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
