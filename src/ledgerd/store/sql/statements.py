"""The batch statements, built as text from validated literals.

Built by hand on purpose (docs/architecture.md §6): drivers' ``executemany`` runs an
upsert row by row (10x slower) and per-value escaping through the driver
(mogrify) cost a third of the consumer's time. Ids and currencies are checked
against their validated alphabet, which has no quote or backslash; free text
goes through the session's escaper; numbers are formatted from ints. Rows are
sorted by primary key so concurrent batches lock in the same order.

Where the dialect binds rows (``Dialect.binds_rows``: SQLite, in process, which
compiles every statement text anew), the hottest INSERTs go as one statement with
each row's raw stored values bound instead (``*_rows``): the same stored values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.holds import Hold
from ledgerd.domain.model import ChangeRequest, ChangeStatus, JournalEntry, Rejection
from ledgerd.store.base import JournalRow, RejectionRow
from ledgerd.store.sql.dialect import Encoding
from ledgerd.store.sql.rows import (
    HOLD_COLUMNS,
    JOURNAL_ACTOR_COLUMNS,
    JOURNAL_COLUMNS,
    OUTBOX_INSERT_COLUMNS,
)

# Rows per multi-row INSERT, and keys per IN list.
ROWS_PER_STATEMENT = 1000
KEYS_PER_STATEMENT = 5000

T = TypeVar("T")
TextLiteral = Callable[[str], str]

# Client ids' alphabet, and "~" of the ids ledgerd gives a transfer's later legs.
# The literal of an empty text column (most actors).
_EMPTY = "''"
_SAFE_TEXT = re.compile(r"[A-Za-z0-9._:~-]*", re.ASCII)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key(text: str) -> str:
    """A request id or currency as an SQL literal.

    Raises:
        ValueError: a character outside the validated alphabet.
    """
    if _SAFE_TEXT.fullmatch(text) is None:
        raise ValueError(f"unexpected characters in {text[:70]!r}")
    return f"'{text}'"


# A whole column of keys joined by commas (outside the alphabet): checked in one regex call.
_SAFE_TEXTS = re.compile(r"[A-Za-z0-9._:~-]*(?:,[A-Za-z0-9._:~-]*)*", re.ASCII)


def check_keys(texts: Sequence[str]) -> None:
    """Check a column of request ids or currencies at once, as ``key`` checks each (the row
    text then quotes them itself: a regex call per value cost a fifth of a journal row).

    Raises:
        ValueError: a character outside the validated alphabet.
    """
    if not texts:
        return
    joined = ",".join(texts)
    # The count: a comma inside a value would pass the pattern as a separator.
    if joined.count(",") != len(texts) - 1 or _SAFE_TEXTS.fullmatch(joined) is None:
        for text in texts:
            key(text)  # raises for the first bad one
        raise ValueError("unexpected characters in keys")  # unreachable: key raised


def keys(texts: Iterable[str]) -> str:
    listed = texts if isinstance(texts, list | tuple) else list(texts)
    if not listed:
        return ""
    check_keys(listed)
    return "'" + "','".join(listed) + "'"


def _quoted_amount(amount: int) -> str:
    return f"'{format_amount(amount)}'"


def amount_literal(enc: Encoding) -> Callable[[int], str]:
    """The engine's amount literal, chosen once per batch: the per-row formatting
    is the consumer's hottest Python (a bare DECIMAL literal on MySQL, text on SQLite)."""
    return _quoted_amount if enc.amount_quote else format_amount


@functools.lru_cache(maxsize=16)
def bound_insert(table: str, columns: str, suffix: str = "") -> str:
    """``INSERT INTO table (columns) VALUES (?, …) suffix``: one parameter a column, for
    ``Session.execute_rows`` (built once per statement, not per batch)."""
    marks = ", ".join("?" * (columns.count(",") + 1))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) {suffix}".rstrip()


def insert_requests(
    requests: Sequence[ChangeRequest],
    now_ms: int,
    group_id: str | None,
    enc: Encoding,
    text: TextLiteral,
) -> Iterator[str]:
    """INSERTs of new PENDING outbox rows of one publish group (a duplicate id fails the
    statement)."""
    off, amount, pending = enc.user_offset, amount_literal(enc), int(ChangeStatus.PENDING)
    group = key(group_id) if group_id is not None else "NULL"
    ordered = sorted(requests, key=lambda r: r.request_id)
    for chunk in chunks(ordered, ROWS_PER_STATEMENT):
        # Most fields of a plain change are empty: their literal needs no check or escape.
        values = ",".join(
            f"({key(r.request_id)},{r.user_id - off},{key(r.currency)},{int(r.type)},"
            f"{amount(r.amount)},{text(r.memo) if r.memo else _EMPTY},{pending},{now_ms},"
            f"{now_ms},{group},{key(r.transfer_id) if r.transfer_id else _EMPTY},"
            f"{r.counterparty_user_id - off},"
            f"{key(r.atomic_group) if r.atomic_group else _EMPTY},{r.atomic_leg},"
            f"{text(r.actor) if r.actor else _EMPTY},{key(r.hold_id) if r.hold_id else _EMPTY},"
            f"{r.expires_at_ms})"
            for r in chunk
        )
        yield f"INSERT INTO change_requests ({OUTBOX_INSERT_COLUMNS}) VALUES " + values


def request_rows(
    requests: Sequence[ChangeRequest], now_ms: int, group_id: str | None, enc: Encoding
) -> list[tuple[object, ...]]:
    """``insert_requests``'s rows as raw stored values, to bind (``OUTBOX_INSERT_COLUMNS``)."""
    off, pending = enc.user_offset, int(ChangeStatus.PENDING)
    return [
        (
            r.request_id, r.user_id - off, r.currency, int(r.type), format_amount(r.amount),
            r.memo, pending, now_ms, now_ms, group_id, r.transfer_id,
            r.counterparty_user_id - off, r.atomic_group, r.atomic_leg, r.actor, r.hold_id,
            r.expires_at_ms,
        )
        for r in sorted(requests, key=lambda r: r.request_id)
    ]  # fmt: skip


def insert_journal(
    journal: Sequence[JournalEntry], enc: Encoding, text: TextLiteral
) -> Iterator[str]:
    """The journal's INSERTs; the actor and hold_id columns only in a statement with a lock
    change's actor or a hold change (the others leave them to their defaults: the same text
    as ``insert_journal_rows``)."""
    off, amount = enc.user_offset, amount_literal(enc)
    for chunk in chunks(journal, ROWS_PER_STATEMENT):
        with_actor = any(e.actor or e.hold_id for e in chunk)
        values = ",".join(
            f"({key(e.request_id)},{e.user_id - off},{key(e.currency)},{int(e.type)},"
            f"{amount(e.amount)},{amount(e.available_after)},"
            f"{amount(e.frozen_after)},{e.version},{e.applied_at_ms},"
            f"{text(e.memo)},{key(e.transfer_id)},{e.counterparty_user_id - off},"
            f"{e.partition},{e.event_seq},{e.lock_after}"
            + (f",{text(e.actor) if e.actor else _EMPTY},{key(e.hold_id)})" if with_actor else ")")
            for e in chunk
        )
        columns = JOURNAL_ACTOR_COLUMNS if with_actor else JOURNAL_COLUMNS
        yield f"INSERT INTO journal ({columns}) VALUES " + values


def journal_values(e: JournalEntry, enc: Encoding) -> list[object]:
    """One journal row as raw stored values (for a bulk load)."""
    return [
        e.request_id, e.user_id - enc.user_offset, e.currency, int(e.type),
        format_amount(e.amount), format_amount(e.available_after),
        format_amount(e.frozen_after), e.version, e.applied_at_ms, e.memo,
        e.transfer_id, e.counterparty_user_id - enc.user_offset, e.partition, e.event_seq,
        e.lock_after,
    ]  # fmt: skip


def insert_journal_rows(
    journal: Sequence[JournalRow], enc: Encoding, text: TextLiteral
) -> Iterator[str]:
    """``insert_journal`` from rows (``JournalEntry``'s fields as a tuple): the same text."""
    off, amount = enc.user_offset, amount_literal(enc)
    for chunk in chunks(journal, ROWS_PER_STATEMENT):
        _check_columns(chunk, 0, 2, 10)  # request id, currency, transfer id
        values = ",".join(
            f"('{rid}',{user - off},'{cur}',{int(kind)},{amount(amt)},{amount(avail)},"
            f"{amount(frozen)},{version},{at_ms},{text(memo)},'{transfer}',"
            f"{other - off},{partition},{seq},{lock})"
            for (
                rid, user, cur, kind, amt, avail, frozen, version, at_ms, memo, transfer, other,
                partition, seq, _, lock,
            ) in chunk
        )  # fmt: skip
        yield f"INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES " + values


def _check_columns(rows: Sequence[Sequence[object]], *columns: int) -> None:
    """``check_keys`` of the rows' text columns at these indexes.

    Raises:
        ValueError: a character outside the validated alphabet.
    """
    for column in columns:
        check_keys([row[column] for row in rows])  # type: ignore[misc]


def journal_row_values(row: JournalRow, enc: Encoding) -> list[object]:
    """``journal_values`` of a row."""
    off = enc.user_offset
    return [
        row[0], row[1] - off, row[2], int(row[3]), format_amount(row[4]),
        format_amount(row[5]), format_amount(row[6]), row[7], row[8], row[9], row[10],
        row[11] - off, row[12], row[13], row[15],
    ]  # fmt: skip


def insert_rejection_rows(
    rejections: Sequence[RejectionRow], decided_at_ms: int, enc: Encoding, text: TextLiteral
) -> Iterator[str]:
    """``insert_rejections`` from rows of client changes (no transfer): the same text."""
    off, amount = enc.user_offset, amount_literal(enc)
    no_transfer = f"{key('')},{0 - off}"
    for chunk in chunks(rejections, ROWS_PER_STATEMENT):
        _check_columns(chunk, 0, 2)  # request id, currency
        values = ",".join(
            f"('{rid}',{user - off},'{cur}',{int(kind)},{amount(amt)},{text(memo)},"
            f"{int(reason)},{decided_at_ms},{no_transfer})"
            for rid, user, cur, kind, amt, memo, reason in chunk
        )
        yield (
            "INSERT INTO rejections (request_id, user_id, currency, type, amount, memo,"
            " reject_reason, decided_at_ms, transfer_id, counterparty_user_id) VALUES " + values
        )


def insert_rejections(
    rejections: Sequence[Rejection], decided_at_ms: int, enc: Encoding, text: TextLiteral
) -> Iterator[str]:
    """The batch's rejection records (a request that already has one fails the statement)."""
    off, amount = enc.user_offset, amount_literal(enc)
    for chunk in chunks(rejections, ROWS_PER_STATEMENT):
        # The hold_id column only in a statement with a hold change (the others leave it to
        # its default: the same text as ``insert_rejection_rows``).
        with_hold = any(r.request.hold_id for r in chunk)
        values = ",".join(
            f"({key(r.request.request_id)},{r.request.user_id - off},{key(r.request.currency)},"
            f"{int(r.request.type)},{amount(r.request.amount)},{text(r.request.memo)},"
            f"{int(r.reason)},{decided_at_ms},{key(r.request.transfer_id)},"
            f"{r.request.counterparty_user_id - off}"
            + (f",{key(r.request.hold_id)})" if with_hold else ")")
            for r in chunk
        )
        yield (
            "INSERT INTO rejections (request_id, user_id, currency, type, amount, memo,"
            " reject_reason, decided_at_ms, transfer_id, counterparty_user_id"
            + (", hold_id) VALUES " if with_hold else ") VALUES ")
            + values
        )


def delete_requests(request_ids: Iterable[str]) -> list[str]:
    """DELETEs of the outbox rows of these ids, in key order: the consumer's commit and the
    sweep delete rows in the same order, so neither waits on the other in a cycle."""
    return [
        f"DELETE FROM change_requests WHERE request_id IN ({keys(chunk)})"
        for chunk in chunks(sorted(request_ids), KEYS_PER_STATEMENT)
    ]


def update_unsent(request_ids: Iterable[str], assignments: str) -> Iterator[str]:
    """UPDATEs of the rows among the ids still waiting for an outcome (a row that
    recorded its outcome itself, before schema 3, keeps it)."""
    unsent = ",".join(
        str(int(s)) for s in (ChangeStatus.PENDING, ChangeStatus.SENT, ChangeStatus.FAILED)
    )
    for chunk in chunks(sorted(request_ids), KEYS_PER_STATEMENT):
        yield (
            f"UPDATE change_requests SET {assignments}"
            f" WHERE request_id IN ({keys(chunk)}) AND status IN ({unsent})"
        )


def upsert_holds(holds: Sequence[Hold], enc: Encoding, upsert: str) -> Iterator[str]:
    """Multi-row upserts of holds as a batch leaves them; ``upsert``: the conflict clause."""
    off, amount = enc.user_offset, amount_literal(enc)
    ordered = sorted(holds, key=lambda h: h.hold_id)
    for chunk in chunks(ordered, ROWS_PER_STATEMENT):
        values = ",".join(
            f"({key(h.hold_id)},{h.user_id - off},{key(h.currency)},{amount(h.amount)},"
            f"{amount(h.captured)},{int(h.state)},{h.expires_at_ms},{h.created_at_ms},"
            f"{h.updated_at_ms})"
            for h in chunk
        )
        yield f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES {values} {upsert}"
