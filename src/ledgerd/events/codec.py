"""The records of the ``balance-events`` topic (docs/events.md).

Key: the decimal user id. Value: a ``ledgerd.v1.BalanceEvent`` in protobuf's JSON
mapping (field names as in the proto, every field present, 64-bit numbers as text).
Header ``schema``: the message's full name, so a reader can tell the format apart
from any later one.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii

from google.protobuf import json_format

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.model import AccountLock, ChangeType, JournalEntry
from ledgerd.errors import PoisonMessage
from ledgerd.v1 import balance_pb2 as pb

SCHEMA_HEADER = "schema"
SCHEMA = pb.BalanceEvent.DESCRIPTOR.full_name  # "ledgerd.v1.BalanceEvent"
_HEADERS = ((SCHEMA_HEADER, SCHEMA.encode()),)
# A JSON string, quoted and escaped as json.dumps(ensure_ascii=True) writes it (the C
# implementation json.dumps itself uses).
_text = encode_basestring_ascii
# A dict lookup: cheaper than the enum's ``name`` property, once per event.
_TYPE_NAMES = {change_type: change_type.name for change_type in ChangeType}
_LOCK_NAMES = {int(lock): pb.AccountLock.Name(int(lock)) for lock in AccountLock}


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
            actor=entry.actor,
            lock_after=entry.lock_after,  # type: ignore[arg-type]
            hold_id=entry.hold_id,
        ),
        partition=entry.partition,
        sequence=entry.event_seq,
    )


def encode_event(entry: JournalEntry) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    """(key, value, headers) of the record that publishes ``entry``.

    The JSON is built directly, byte for byte what ``json_format.MessageToJson`` prints
    for ``event_of(entry)`` with proto field names, every field and no indent (a test
    holds them equal): it is the publisher's hot path, and the generic printer costs ten
    times as much. That printer writes a message's fields in number order, those holding
    their default value (0, "") after all the others; text is escaped as ``json.dumps``
    escapes it by default (non-ASCII as ``\\u`` escapes).
    """
    memo, transfer_id, counterparty = entry.memo, entry.transfer_id, entry.counterparty_user_id
    user = str(entry.user_id)
    if (
        entry.request_id
        and entry.user_id
        and entry.currency
        and entry.version
        and entry.applied_at_ms
        and (memo or not (transfer_id or counterparty))
        and (transfer_id or not counterparty)
        and not entry.actor
        and not entry.lock_after
        and not entry.hold_id
    ):
        # A client's change (a transfer leg with a memo too): its fields at their default,
        # if any, are the last ones, so number order is the printer's order. A transfer
        # leg without memo takes the general path below.
        frozen = entry.frozen_after
        body = (
            f'{{"request_id": {_text(entry.request_id)}, "user_id": "{user}",'
            f' "currency": {_text(entry.currency)}, "type": "{_TYPE_NAMES[entry.type]}",'
            f' "amount": "{format_amount(entry.amount)}",'
            f' "available_after": "{format_amount(entry.available_after)}",'
            f' "frozen_after": "{format_amount(frozen) if frozen else 0}",'
            f' "version": "{entry.version}", "applied_at_unix_ms": "{entry.applied_at_ms}",'
            f' "memo": {_text(memo)}, "transfer_id": {_text(transfer_id)},'
            f' "counterparty_user_id": "{counterparty}", "actor": "",'
            ' "lock_after": "ACCOUNT_LOCK_NONE", "hold_id": ""}'
        )
        if entry.partition:  # the common case, as one string
            value = (
                f'{{"entry": {body}, "partition": {entry.partition},'
                f' "sequence": "{entry.event_seq}"}}'
            )
            return user.encode(), value.encode(), _HEADERS
    else:
        body = _message(_entry_fields(entry))
    sequence = f'"sequence": "{entry.event_seq}"'
    if entry.partition or not entry.event_seq:
        value = f'{{"entry": {body}, "partition": {entry.partition}, {sequence}}}'
    else:
        value = f'{{"entry": {body}, {sequence}, "partition": 0}}'
    return user.encode(), value.encode(), _HEADERS


def _entry_fields(entry: JournalEntry) -> list[tuple[str, bool]]:
    """The JournalEntry message's members in field number order, each with whether it
    holds its default (the type never does: ChangeType has no 0)."""
    return [
        (f'"request_id": {_text(entry.request_id)}', not entry.request_id),
        (f'"user_id": "{entry.user_id}"', not entry.user_id),
        (f'"currency": {_text(entry.currency)}', not entry.currency),
        (f'"type": "{entry.type.name}"', False),
        (f'"amount": "{format_amount(entry.amount)}"', False),
        (f'"available_after": "{format_amount(entry.available_after)}"', False),
        (f'"frozen_after": "{format_amount(entry.frozen_after)}"', False),
        (f'"version": "{entry.version}"', not entry.version),
        (f'"applied_at_unix_ms": "{entry.applied_at_ms}"', not entry.applied_at_ms),
        (f'"memo": {_text(entry.memo)}', not entry.memo),
        (f'"transfer_id": {_text(entry.transfer_id)}', not entry.transfer_id),
        (f'"counterparty_user_id": "{entry.counterparty_user_id}"', not entry.counterparty_user_id),
        (f'"actor": {_text(entry.actor)}', not entry.actor),
        (f'"lock_after": "{_LOCK_NAMES[entry.lock_after]}"', not entry.lock_after),
        (f'"hold_id": {_text(entry.hold_id)}', not entry.hold_id),
    ]


def _message(fields: list[tuple[str, bool]]) -> str:
    """A JSON object of members in protobuf's printing order: set fields, then defaults."""
    members = [member for member, default in fields if not default]
    members += [member for member, default in fields if default]
    return "{" + ", ".join(members) + "}"


def decode_event(value: bytes) -> pb.BalanceEvent:
    """Raises: PoisonMessage: ``value`` is not a BalanceEvent in JSON (something else
    wrote to the topic)."""
    try:
        return json_format.Parse(value, pb.BalanceEvent())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise PoisonMessage(f"not a {SCHEMA} in JSON: {exc}") from exc
