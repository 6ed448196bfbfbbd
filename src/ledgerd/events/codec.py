"""The records of the ``balance-events`` topic (docs/events.md).

Key: the decimal user id. Value: a ``ledgerd.v1.BalanceEvent`` in protobuf's JSON
mapping (field names as in the proto, every field present, 64-bit numbers as text).
Header ``schema``: the message's full name, so a reader can tell the format apart
from any later one.
"""

from __future__ import annotations

import json

from google.protobuf import json_format

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import JournalEntry
from ledgerd.domain.partitioning import user_key
from ledgerd.errors import PoisonMessage
from ledgerd.v1 import balance_pb2 as pb

SCHEMA_HEADER = "schema"
SCHEMA = pb.BalanceEvent.DESCRIPTOR.full_name  # "ledgerd.v1.BalanceEvent"
_HEADERS = ((SCHEMA_HEADER, SCHEMA.encode()),)


def event_of(entry: JournalEntry) -> pb.BalanceEvent:
    """The event of a journal entry that has its stream position (``event_seq`` > 0)."""
    return pb.BalanceEvent(
        entry=pb.JournalEntry(
            request_id=entry.request_id,
            user_id=entry.user_id,
            currency=entry.currency,
            type=int(entry.type),  # type: ignore[arg-type]  # IntEnum values are the wire values
            amount=format_amount(entry.amount),
            available_after=format_amount(entry.available_after),
            frozen_after=format_amount(entry.frozen_after),
            version=entry.version,
            applied_at_unix_ms=entry.applied_at_ms,
            memo=entry.memo,
            transfer_id=entry.transfer_id,
            counterparty_user_id=entry.counterparty_user_id,
        ),
        partition=entry.partition,
        sequence=entry.event_seq,
    )


def encode_event(entry: JournalEntry) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    """(key, value, headers) of the record that publishes ``entry``.

    The JSON is built directly, in the exact form ``json_format.MessageToJson`` gives
    ``event_of(entry)`` with every field (a test holds them equal): it is the publisher's
    hot path, and the generic printer costs ten times as much.
    """
    value = {
        "entry": {
            "request_id": entry.request_id,
            "user_id": str(entry.user_id),
            "currency": entry.currency,
            "type": entry.type.name,
            "amount": format_amount(entry.amount),
            "available_after": format_amount(entry.available_after),
            "frozen_after": format_amount(entry.frozen_after),
            "version": str(entry.version),
            "applied_at_unix_ms": str(entry.applied_at_ms),
            "memo": entry.memo,
            "transfer_id": entry.transfer_id,
            "counterparty_user_id": str(entry.counterparty_user_id),
        },
        "partition": entry.partition,
        "sequence": str(entry.event_seq),
    }
    return user_key(entry.user_id), json.dumps(value, ensure_ascii=False).encode(), _HEADERS


def decode_event(value: bytes) -> pb.BalanceEvent:
    """Raises: PoisonMessage: ``value`` is not a BalanceEvent in JSON (something else
    wrote to the topic)."""
    try:
        return json_format.Parse(value, pb.BalanceEvent())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise PoisonMessage(f"not a {SCHEMA} in JSON: {exc}") from exc
