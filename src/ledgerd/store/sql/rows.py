"""Column lists and row mapping, the same on every engine.

Rows come back with user ids as stored (shifted by the engine's
``user_offset``) and amounts as decimal text (SQLite stores text; MySQL's
DECIMAL columns are read as text, never as float).
"""

from __future__ import annotations

from ledgerd.domain.amounts import parse_decimal
from ledgerd.domain.holds import Hold, HoldState
from ledgerd.domain.model import (
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    RejectReason,
    StoredRequest,
)
from ledgerd.store.sql.dialect import Row

REQUEST_COLUMNS = (
    "request_id, user_id, currency, type, amount, memo, status, reject_reason, transfer_id,"
    " counterparty_user_id, hold_id"
)
# A rejection record read in the shape of an outbox row (its status is REJECTED).
REJECTION_AS_REQUEST = (
    f"request_id, user_id, currency, type, amount, memo, {int(ChangeStatus.REJECTED)},"
    " reject_reason, transfer_id, counterparty_user_id, hold_id"
)
# The outbox columns after REQUEST_COLUMNS that only the sweep reads.
UNSENT_COLUMNS = (
    "attempts, updated_at_ms, created_at_ms, group_id, atomic_group, atomic_leg, actor,"
    " hold_expires_at_ms"
)
# The columns a new outbox row is written with (``statements.insert_requests``).
OUTBOX_INSERT_COLUMNS = (
    "request_id, user_id, currency, type, amount, memo, status, created_at_ms,"
    " updated_at_ms, group_id, transfer_id, counterparty_user_id, atomic_group, atomic_leg,"
    " actor, hold_id, hold_expires_at_ms"
)
# A balance is its account's newest journal entry (``j``), read as ``balance`` reads a row.
BALANCE_COLUMNS = (
    "j.user_id, j.currency, j.available_after, j.frozen_after, j.version, j.lock_after"
)
JOURNAL_COLUMNS = (
    "request_id, user_id, currency, type, amount, available_after, frozen_after,"
    " version, applied_at_ms, memo, transfer_id, counterparty_user_id, partition_id, event_seq,"
    " lock_after"
)
# With the actor of a lock change (schema 10): what reads the journal, and what writes
# entries decided by the general path. A client change's rows (the column path) leave it
# to its default, ''.
JOURNAL_ACTOR_COLUMNS = f"{JOURNAL_COLUMNS}, actor, hold_id"
HOLD_COLUMNS = (
    "hold_id, user_id, currency, amount, captured, state, expires_at_ms, created_at_ms,"
    " updated_at_ms"
)
# Stored type numbers to their ChangeType, looked up without the enum's call machinery.
_CHANGE_TYPES = {int(change_type): change_type for change_type in ChangeType}


def stored_request(
    row: Row,
    user_offset: int,
    atomic_group: str = "",
    atomic_leg: int = 0,
    actor: str = "",
    *,
    expires_at_ms: int = 0,
) -> StoredRequest:
    return StoredRequest(
        ChangeRequest(
            request_id=row[0],
            user_id=int(row[1]) + user_offset,
            currency=row[2],
            type=ChangeType(row[3]),
            amount=parse_decimal(row[4]),
            memo=row[5],
            transfer_id=row[8],
            counterparty_user_id=int(row[9]) + user_offset,
            atomic_group=atomic_group,
            atomic_leg=atomic_leg,
            actor=actor,
            hold_id=row[10],
            expires_at_ms=expires_at_ms,
        ),
        ChangeStatus(row[6]),
        RejectReason(row[7]),
    )


def balance(row: Row, user_offset: int) -> Balance:
    return Balance(
        int(row[0]) + user_offset,
        row[1],
        parse_decimal(row[2]),
        parse_decimal(row[3]),
        int(row[4]),
        int(row[5]),
    )


def journal_entry(row: Row, user_offset: int) -> JournalEntry:
    # Positional: the events publisher converts every row it publishes.
    return JournalEntry(
        row[0],  # request_id
        int(row[1]) + user_offset,
        row[2],  # currency
        _CHANGE_TYPES.get(row[3]) or ChangeType(row[3]),  # the lookup: no enum call
        parse_decimal(row[4]),  # amount
        parse_decimal(row[5]),  # available_after
        parse_decimal(row[6]),  # frozen_after
        int(row[7]),  # version
        int(row[8]),  # applied_at_ms
        row[9],  # memo
        row[10],  # transfer_id
        int(row[11]) + user_offset,  # counterparty_user_id
        int(row[12]),  # partition
        int(row[13]),  # event_seq
        row[15] if len(row) > 15 else "",  # actor (JOURNAL_ACTOR_COLUMNS)
        int(row[14]),  # lock_after
        row[16] if len(row) > 16 else "",  # hold_id (JOURNAL_ACTOR_COLUMNS)
    )


def hold(row: Row, user_offset: int) -> Hold:
    return Hold(
        row[0],
        int(row[1]) + user_offset,
        row[2],
        parse_decimal(row[3]),
        parse_decimal(row[4]),
        HoldState(row[5]),
        int(row[6]),
        int(row[7]),
        int(row[8]),
    )
