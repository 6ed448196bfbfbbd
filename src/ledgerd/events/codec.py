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
from ledgerd.store.base import JournalRow
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
    if not entry.hold_id:
        common = _encode_common(
            entry.request_id, entry.user_id, entry.currency, entry.type, entry.amount,
            entry.available_after, entry.frozen_after, entry.version, entry.applied_at_ms,
            entry.memo, entry.transfer_id, entry.counterparty_user_id, entry.partition,
            entry.event_seq, entry.actor, entry.lock_after,
        )  # fmt: skip
        if common is not None:
            return common
    value = _event_value(_message(_entry_fields(entry)), entry.partition, entry.event_seq)
    return str(entry.user_id).encode(), value.encode(), _HEADERS


def encode_event_row(
    row: JournalRow, amount_text: str = ""
) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    """``encode_event`` of ``JournalEntry(*row)``, without making the entry where the row
    is a client's change (the consumer's column path journals those). ``amount_text``,
    if given, is ``format_amount`` of the row's amount (the change message's text)."""
    common = _encode_common(*row, amount_text)
    return common if common is not None else encode_event(JournalEntry(*row))


def _encode_common(  # noqa: PLR0917 - a journal row's fields, in its order
    request_id: str,
    user_id: int,
    currency: str,
    change_type: ChangeType,
    amount: int,
    available_after: int,
    frozen_after: int,
    version: int,
    applied_at_ms: int,
    memo: str,
    transfer_id: str,
    counterparty: int,
    partition: int,
    event_seq: int,
    actor: str,
    lock_after: int,
    amount_text: str = "",
) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]] | None:
    """The record of a client's change (a transfer leg with a memo too), or None for any
    other entry (``encode_event`` writes those); an entry without a hold. Its fields at
    their default, if any, are the last ones, so number order is the printer's order."""
    if not (
        request_id
        and user_id
        and currency.isascii()  # the domain's codes, [A-Z0-9]: written unescaped below
        and currency.isalnum()
        and version
        and applied_at_ms
        and (memo or not (transfer_id or counterparty))
        and (transfer_id or not counterparty)
        and not actor
        and not lock_after
    ):
        return None
    user = str(user_id)
    # Currency codes are [A-Z0-9]: quoted as they are, no escaping to look for. Most
    # entries have no memo and no transfer: their empty text is written as it is.
    body = (
        f'{{"request_id": {_text(request_id)}, "user_id": "{user}",'
        f' "currency": "{currency}", "type": "{_TYPE_NAMES[change_type]}",'
        f' "amount": "{amount_text or format_amount(amount)}",'
        f' "available_after": "{format_amount(available_after)}",'
        f' "frozen_after": "{format_amount(frozen_after) if frozen_after else 0}",'
        f' "version": "{version}", "applied_at_unix_ms": "{applied_at_ms}",'
        f' "memo": {_text(memo) if memo else _EMPTY_TEXT},'
        f' "transfer_id": {_text(transfer_id) if transfer_id else _EMPTY_TEXT},'
        f' "counterparty_user_id": "{counterparty}", "actor": "",'
        ' "lock_after": "ACCOUNT_LOCK_NONE", "hold_id": ""}'
    )
    if partition or not event_seq:
        value = f'{{"entry": {body}, "partition": {partition}, "sequence": "{event_seq}"}}'
    else:
        value = f'{{"entry": {body}, "sequence": "{event_seq}", "partition": 0}}'
    return user.encode(), value.encode(), _HEADERS


_EMPTY_TEXT = '""'


def _event_value(body: str, partition: int, event_seq: int) -> str:
    """The event around its entry's JSON: partition 0 is a default, printed last (written
    inline, the same, in ``_encode_common``)."""
    if partition or not event_seq:
        return f'{{"entry": {body}, "partition": {partition}, "sequence": "{event_seq}"}}'
    return f'{{"entry": {body}, "sequence": "{event_seq}", "partition": 0}}'


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
