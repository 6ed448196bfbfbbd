"""The embedded store: one SQLite file in WAL mode with synchronous=FULL.

SQLite integers are signed 64-bit, so user ids (unsigned 64-bit) are stored
shifted by 2**63, which keeps their order. Amounts are canonical decimal text:
DECIMAL(38,18) does not fit any SQLite number type exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    RejectReason,
    StoredRequest,
)
from ledgerd.errors import Fenced, StoreUnavailable
from ledgerd.store.base import (
    BatchCommit,
    ChooseNew,
    LockToken,
    PartitionClaim,
    UnsentRequest,
)
from ledgerd.support.sqlite import ThreadConnections

_USER_SHIFT = 2**63
# SQLite's default limit of host parameters per statement is 32766.
_MAX_PARAMS = 30000

_MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS change_requests (
                request_id TEXT PRIMARY KEY,
                user_id INTEGER NOT NULL,
                currency TEXT NOT NULL,
                type INTEGER NOT NULL,
                amount TEXT NOT NULL,
                memo TEXT NOT NULL,
                status INTEGER NOT NULL,
                reject_reason INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at_ms INTEGER NOT NULL,
                updated_at_ms INTEGER NOT NULL,
                sent_at_ms INTEGER,
                applied_at_ms INTEGER
            ) WITHOUT ROWID""",
            "CREATE INDEX IF NOT EXISTS change_requests_status"
            " ON change_requests (status, created_at_ms)",
            """CREATE TABLE IF NOT EXISTS balances (
                user_id INTEGER NOT NULL,
                currency TEXT NOT NULL,
                available TEXT NOT NULL,
                frozen TEXT NOT NULL,
                version INTEGER NOT NULL,
                PRIMARY KEY (user_id, currency)
            ) WITHOUT ROWID""",
            """CREATE TABLE IF NOT EXISTS journal (
                user_id INTEGER NOT NULL,
                currency TEXT NOT NULL,
                version INTEGER NOT NULL,
                request_id TEXT NOT NULL UNIQUE,
                type INTEGER NOT NULL,
                amount TEXT NOT NULL,
                available_after TEXT NOT NULL,
                frozen_after TEXT NOT NULL,
                applied_at_ms INTEGER NOT NULL,
                memo TEXT NOT NULL,
                PRIMARY KEY (user_id, currency, version)
            ) WITHOUT ROWID""",
            """CREATE TABLE IF NOT EXISTS partition_offsets (
                topic TEXT NOT NULL,
                partition INTEGER NOT NULL,
                next_offset INTEGER NOT NULL,
                epoch INTEGER NOT NULL,
                PRIMARY KEY (topic, partition)
            )""",
            """CREATE TABLE IF NOT EXISTS leader_locks (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                epoch INTEGER NOT NULL,
                expires_at_ms INTEGER NOT NULL
            )""",
        ],
    ),
]

# The database clock in Unix milliseconds: lock expiry never depends on a process's clock.
_DB_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

_REQUEST_COLUMNS = "request_id, user_id, currency, type, amount, memo, status, reject_reason"
_JOURNAL_COLUMNS = (
    "request_id, user_id, currency, type, amount, available_after, frozen_after,"
    " version, applied_at_ms, memo"
)


def _chunks(items: Sequence[object], size: int) -> Iterator[Sequence[object]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


def _stored_request(row: Sequence[Any]) -> StoredRequest:
    request = ChangeRequest(
        request_id=row[0],
        user_id=row[1] + _USER_SHIFT,
        currency=row[2],
        type=ChangeType(row[3]),
        amount=parse_decimal(row[4]),
        memo=row[5],
    )
    return StoredRequest(request, ChangeStatus(row[6]), RejectReason(row[7]))


def _balance(row: Sequence[Any]) -> Balance:
    return Balance(
        row[0] + _USER_SHIFT, row[1], parse_decimal(row[2]), parse_decimal(row[3]), row[4]
    )


def _journal_entry(row: Sequence[Any]) -> JournalEntry:
    return JournalEntry(
        request_id=row[0],
        user_id=row[1] + _USER_SHIFT,
        currency=row[2],
        type=ChangeType(row[3]),
        amount=parse_decimal(row[4]),
        available_after=parse_decimal(row[5]),
        frozen_after=parse_decimal(row[6]),
        version=row[7],
        applied_at_ms=row[8],
        memo=row[9],
    )


class SqliteStore:
    """The Store interface on one SQLite database file."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self._db = ThreadConnections(path, StoreUnavailable, busy_timeout_s)

    def migrate(self) -> None:
        with self._db.write() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, statements in _MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    connection.execute(statement)
                connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def ping(self) -> None:
        self._db.read("SELECT 1")

    def close(self) -> None:
        self._db.close()

    # -- outbox ---------------------------------------------------------------
    def accept_requests(
        self, request_ids: Collection[str], choose_new: ChooseNew, now_ms: int
    ) -> Mapping[str, StoredRequest]:
        with self._db.write() as connection:
            existing = self._select_requests(connection, list(request_ids))
            missing = [rid for rid in request_ids if rid not in existing]
            existing.update(self._journaled_requests(connection, missing))
            rows = [
                (
                    r.request_id,
                    r.user_id - _USER_SHIFT,
                    r.currency,
                    int(r.type),
                    format_amount(r.amount),
                    r.memo,
                    int(ChangeStatus.PENDING),
                    now_ms,
                    now_ms,
                )
                for r in choose_new(existing)
            ]
            connection.executemany(
                "INSERT INTO change_requests (request_id, user_id, currency, type, amount, memo,"
                " status, created_at_ms, updated_at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return existing

    def _select_requests(
        self, connection: sqlite3.Connection, request_ids: Sequence[str]
    ) -> dict[str, StoredRequest]:
        found: dict[str, StoredRequest] = {}
        for chunk in _chunks(request_ids, _MAX_PARAMS):
            cursor = connection.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM change_requests"
                f" WHERE request_id IN ({_placeholders(len(chunk))})",
                chunk,
            )
            for row in cursor:
                found[row[0]] = _stored_request(row)
        return found

    def _journaled_requests(
        self, connection: sqlite3.Connection, request_ids: Sequence[str]
    ) -> dict[str, StoredRequest]:
        found: dict[str, StoredRequest] = {}
        for chunk in _chunks(request_ids, _MAX_PARAMS):
            cursor = connection.execute(
                f"SELECT {_JOURNAL_COLUMNS} FROM journal"
                f" WHERE request_id IN ({_placeholders(len(chunk))})",
                chunk,
            )
            for row in cursor:
                found[row[0]] = _journal_entry(row).as_stored_request()
        return found

    def get_requests(self, request_ids: Collection[str]) -> Mapping[str, StoredRequest]:
        try:
            return self._select_requests(self._db.get(), list(request_ids))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    def mark_sent(self, request_ids: Collection[str], now_ms: int) -> None:
        self._update_unsent(
            request_ids,
            "status = ?, sent_at_ms = ?, updated_at_ms = ?",
            (int(ChangeStatus.SENT), now_ms, now_ms),
        )

    def mark_failed(self, request_ids: Collection[str], now_ms: int) -> None:
        self._update_unsent(
            request_ids,
            "status = ?, attempts = attempts + 1, updated_at_ms = ?",
            (int(ChangeStatus.FAILED), now_ms),
        )

    def _update_unsent(
        self, request_ids: Collection[str], assignments: str, values: tuple[int, ...]
    ) -> None:
        ids = list(request_ids)
        unsent = (int(ChangeStatus.PENDING), int(ChangeStatus.FAILED))
        with self._db.write() as connection:
            for chunk in _chunks(ids, _MAX_PARAMS):
                connection.execute(
                    f"UPDATE change_requests SET {assignments}"
                    f" WHERE request_id IN ({_placeholders(len(chunk))}) AND status IN (?, ?)",
                    (*values, *chunk, *unsent),
                )

    def find_unsent(self, created_before_ms: int, limit: int) -> Sequence[UnsentRequest]:
        rows = self._db.read(
            f"SELECT {_REQUEST_COLUMNS}, attempts, updated_at_ms FROM change_requests"
            " WHERE (status = ? AND created_at_ms < ?) OR status = ?"
            " ORDER BY created_at_ms LIMIT ?",
            (int(ChangeStatus.PENDING), created_before_ms, int(ChangeStatus.FAILED), limit),
        )
        return [UnsentRequest(_stored_request(row), row[8], row[9]) for row in rows]

    def count_unfinished(self) -> Mapping[ChangeStatus, int]:
        unfinished = (ChangeStatus.PENDING, ChangeStatus.SENT, ChangeStatus.FAILED)
        counts = dict.fromkeys(unfinished, 0)
        for status, count in self._db.read(
            "SELECT status, COUNT(*) FROM change_requests WHERE status IN (?, ?, ?)"
            " GROUP BY status",
            [int(s) for s in unfinished],
        ):
            counts[ChangeStatus(status)] = count
        return counts

    def delete_finished_requests(self, created_before_ms: int, limit: int, lock: LockToken) -> int:
        with self._db.write() as connection:
            self._check_lock(connection, lock)
            cursor = connection.execute(
                "DELETE FROM change_requests WHERE request_id IN (SELECT request_id"
                " FROM change_requests WHERE status IN (?, ?) AND created_at_ms < ? LIMIT ?)",
                (int(ChangeStatus.APPLIED), int(ChangeStatus.REJECTED), created_before_ms, limit),
            )
            return cursor.rowcount

    # -- leader locks -------------------------------------------------------
    def _check_lock(self, connection: sqlite3.Connection, lock: LockToken) -> None:
        row = connection.execute(
            f"SELECT 1 FROM leader_locks WHERE name = ? AND owner = ? AND epoch = ?"
            f" AND expires_at_ms > {_DB_NOW_MS}",
            (lock.name, lock.owner, lock.epoch),
        ).fetchone()
        if row is None:
            raise Fenced(f"leader lock {lock.name}")

    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        with self._db.write() as connection:
            connection.execute(
                "INSERT INTO leader_locks (name, owner, epoch, expires_at_ms)"
                " VALUES (?, '', 0, 0) ON CONFLICT (name) DO NOTHING",
                (name,),
            )
            cursor = connection.execute(
                f"UPDATE leader_locks SET owner = ?, epoch = epoch + 1,"
                f" expires_at_ms = {_DB_NOW_MS} + ?"
                f" WHERE name = ? AND expires_at_ms <= {_DB_NOW_MS}",
                (owner, ttl_ms, name),
            )
            if cursor.rowcount != 1:
                return None
            (epoch,) = connection.execute(
                "SELECT epoch FROM leader_locks WHERE name = ?", (name,)
            ).fetchone()
        return int(epoch)

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        with self._db.write() as connection:
            cursor = connection.execute(
                f"UPDATE leader_locks SET expires_at_ms = {_DB_NOW_MS} + ?"
                f" WHERE name = ? AND owner = ? AND epoch = ? AND expires_at_ms > {_DB_NOW_MS}",
                (ttl_ms, token.name, token.owner, token.epoch),
            )
            return cursor.rowcount == 1

    def release_lock(self, token: LockToken) -> None:
        with self._db.write() as connection:
            connection.execute(
                "UPDATE leader_locks SET expires_at_ms = 0"
                " WHERE name = ? AND owner = ? AND epoch = ?",
                (token.name, token.owner, token.epoch),
            )

    # -- consumer -------------------------------------------------------------
    def claim_partition(self, topic: str, partition: int) -> PartitionClaim:
        with self._db.write() as connection:
            connection.execute(
                "INSERT INTO partition_offsets (topic, partition, next_offset, epoch)"
                " VALUES (?, ?, 0, 0) ON CONFLICT (topic, partition) DO NOTHING",
                (topic, partition),
            )
            connection.execute(
                "UPDATE partition_offsets SET epoch = epoch + 1 WHERE topic = ? AND partition = ?",
                (topic, partition),
            )
            next_offset, epoch = connection.execute(
                "SELECT next_offset, epoch FROM partition_offsets"
                " WHERE topic = ? AND partition = ?",
                (topic, partition),
            ).fetchone()
        return PartitionClaim(topic, partition, epoch, next_offset)

    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        found: dict[Account, Balance] = {}
        wanted = list(accounts)
        # Two parameters per account.
        for chunk in _chunks(wanted, _MAX_PARAMS // 2):
            condition = " OR ".join(["(user_id = ? AND currency = ?)"] * len(chunk))
            params = [
                value
                for account in chunk
                for value in (account.user_id - _USER_SHIFT, account.currency)  # type: ignore[attr-defined]
            ]
            for row in self._db.read(
                "SELECT user_id, currency, available, frozen, version FROM balances"
                f" WHERE {condition}",
                params,
            ):
                balance = _balance(row)
                found[balance.account] = balance
        return found

    def commit_batch(self, batch: BatchCommit) -> None:
        with self._db.write() as connection:
            for position in batch.positions:
                cursor = connection.execute(
                    "UPDATE partition_offsets SET next_offset = ?"
                    " WHERE topic = ? AND partition = ? AND epoch = ?",
                    (position.next_offset, position.topic, position.partition, position.epoch),
                )
                if cursor.rowcount != 1:
                    raise Fenced(
                        f"partition {position.topic}/{position.partition}", position.partition
                    )
            connection.executemany(
                "INSERT INTO balances (user_id, currency, available, frozen, version)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, currency) DO UPDATE SET"
                " available = excluded.available, frozen = excluded.frozen,"
                " version = excluded.version",
                [
                    (
                        b.user_id - _USER_SHIFT,
                        b.currency,
                        format_amount(b.available),
                        format_amount(b.frozen),
                        b.version,
                    )
                    for b in batch.balances
                ],
            )
            connection.executemany(
                f"INSERT INTO journal ({_JOURNAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        e.request_id,
                        e.user_id - _USER_SHIFT,
                        e.currency,
                        int(e.type),
                        format_amount(e.amount),
                        format_amount(e.available_after),
                        format_amount(e.frozen_after),
                        e.version,
                        e.applied_at_ms,
                        e.memo,
                    )
                    for e in batch.journal
                ],
            )
            connection.executemany(
                "UPDATE change_requests SET status = ?, reject_reason = ?, applied_at_ms = ?,"
                " updated_at_ms = ? WHERE request_id = ?",
                [
                    (
                        int(o.status),
                        int(o.reject_reason),
                        batch.applied_at_ms,
                        batch.applied_at_ms,
                        o.request_id,
                    )
                    for o in batch.outcomes
                ],
            )

    # -- reads ----------------------------------------------------------------
    def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        sql = "SELECT user_id, currency, available, frozen, version FROM balances WHERE user_id = ?"
        params: list[object] = [user_id - _USER_SHIFT]
        if currency is not None:
            sql += " AND currency = ?"
            params.append(currency)
        return [_balance(row) for row in self._db.read(sql + " ORDER BY currency", params)]

    def get_journal(
        self, user_id: int, currency: str, after_version: int, limit: int
    ) -> Sequence[JournalEntry]:
        rows = self._db.read(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE user_id = ? AND currency = ?"
            " AND version > ? ORDER BY version LIMIT ?",
            (user_id - _USER_SHIFT, currency, min(after_version, 2**63 - 1), limit),
        )
        return [_journal_entry(row) for row in rows]

    def get_journal_entries(self, request_ids: Collection[str]) -> Mapping[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        ids = list(request_ids)
        for chunk in _chunks(ids, _MAX_PARAMS):
            for row in self._db.read(
                f"SELECT {_JOURNAL_COLUMNS} FROM journal"
                f" WHERE request_id IN ({_placeholders(len(chunk))})",
                chunk,
            ):
                found[row[0]] = _journal_entry(row)
        return found

    def snapshot(self) -> AbstractContextManager[None]:
        return self._db.snapshot()

    def scan_balances(self, after: Account | None, limit: int) -> Sequence[Balance]:
        condition, params = "", []
        if after is not None:
            condition = "WHERE (user_id, currency) > (?, ?)"
            params = [after.user_id - _USER_SHIFT, after.currency]
        rows = self._db.read(
            f"SELECT user_id, currency, available, frozen, version FROM balances {condition}"
            " ORDER BY user_id, currency LIMIT ?",
            [*params, limit],
        )
        return [_balance(row) for row in rows]

    def scan_journal(
        self, after: tuple[int, str, int] | None, limit: int
    ) -> Sequence[JournalEntry]:
        condition, params = "", []
        if after is not None:
            condition = "WHERE (user_id, currency, version) > (?, ?, ?)"
            params = [after[0] - _USER_SHIFT, after[1], after[2]]
        rows = self._db.read(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal {condition}"
            " ORDER BY user_id, currency, version LIMIT ?",
            [*params, limit],
        )
        return [_journal_entry(row) for row in rows]

    def scan_requests(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        rows = self._db.read(
            f"SELECT {_REQUEST_COLUMNS} FROM change_requests WHERE request_id > ?"
            " ORDER BY request_id LIMIT ?",
            (after or "", limit),
        )
        return [_stored_request(row) for row in rows]

    def get_positions(self, topic: str) -> Mapping[int, int]:
        rows = self._db.read(
            "SELECT partition, next_offset FROM partition_offsets WHERE topic = ?", (topic,)
        )
        return {row[0]: row[1] for row in rows}
