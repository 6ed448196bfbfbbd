"""The production store on MySQL 8 / MariaDB 10.11+ (driver: mysqlclient).

Batches are written with hand-built multi-row statements: the drivers'
``executemany`` runs ``INSERT … ON DUPLICATE KEY UPDATE`` row by row (10x
slower, DESIGN.md §7). Rows are sorted by primary key so concurrent batches
lock in the same order. The journal can go through ``LOAD DATA LOCAL
INFILE`` instead (``LEDGERD_MYSQL_LOAD_DATA``). Connections are opened with
CLIENT.FOUND_ROWS so an UPDATE reports rows matched, which the offset
compare-and-set relies on. DECIMAL columns are read as text, never as
float, and parsed into scaled integers.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import MySQLdb
from MySQLdb.constants import CLIENT, FIELD_TYPE
from MySQLdb.converters import conversions

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
from ledgerd.errors import Fenced, LedgerError, StoreUnavailable, TransientStoreError
from ledgerd.store.base import (
    BatchCommit,
    ChooseNew,
    LockToken,
    PartitionClaim,
    UnsentRequest,
)
from ledgerd.store.mysql_schema import MIGRATIONS
from ledgerd.store.pool import ConnectionPool

ROWS_PER_STATEMENT = 1000
_DEADLOCK, _LOCK_WAIT_TIMEOUT, _DUPLICATE_KEY = 1213, 1205, 1062

_REQUEST_COLUMNS = "request_id, user_id, currency, type, amount, memo, status, reject_reason"
_JOURNAL_COLUMNS = (
    "request_id, user_id, currency, type, amount, available_after, frozen_after,"
    " version, applied_at_ms, memo"
)
# The database clock in Unix milliseconds (MySQL and MariaDB): lock expiry never
# depends on a process's own clock.
_DB_NOW_MS = "CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)"
_CONVERSIONS = {**conversions, FIELD_TYPE.NEWDECIMAL: str, FIELD_TYPE.DECIMAL: str}


@dataclass(frozen=True, slots=True)
class MysqlUrl:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> MysqlUrl:
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        if parts.scheme != "mysql" or not parts.hostname or not database:
            raise ValueError("store URL must look like mysql://user:pass@host:3306/database")
        return cls(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=database,
        )


def _translate(exc: MySQLdb.Error) -> LedgerError:
    """Map a driver error to ledgerd's hierarchy (retriable or not)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    if code in (_DEADLOCK, _LOCK_WAIT_TIMEOUT, _DUPLICATE_KEY):
        return TransientStoreError(f"mysql {code}: {exc.args[-1]}")
    return StoreUnavailable(f"mysql {code}: {exc.args[-1] if exc.args else exc}")


_SAFE_TEXT = re.compile(r"[A-Za-z0-9._:-]*", re.ASCII)


def _key(text: str) -> str:
    """A request id or currency as an SQL literal.

    Hot statements are built as text rather than through the driver's per-value
    escaping (a third of the consumer's time): ids and currencies are checked
    against their validated alphabet, which has no quote or backslash; free text
    goes through the C escaper (``_text``).
    """
    if _SAFE_TEXT.fullmatch(text) is None:
        raise ValueError(f"unexpected characters in {text[:70]!r}")
    return f"'{text}'"


def _keys(texts: Iterable[str]) -> str:
    return ",".join(_key(text) for text in texts)


def _text(cursor: Any, text: str) -> str:
    if not text:
        return "''"
    literal: bytes = cursor.connection.string_literal(text.encode("utf-8"))
    return literal.decode("utf-8")


def _chunks(items: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stored_request(row: Sequence[Any]) -> StoredRequest:
    return StoredRequest(
        ChangeRequest(
            row[0], int(row[1]), row[2], ChangeType(row[3]), parse_decimal(row[4]), row[5]
        ),
        ChangeStatus(row[6]),
        RejectReason(row[7]),
    )


def _balance(row: Sequence[Any]) -> Balance:
    return Balance(int(row[0]), row[1], parse_decimal(row[2]), parse_decimal(row[3]), int(row[4]))


def _journal_entry(row: Sequence[Any]) -> JournalEntry:
    return JournalEntry(
        request_id=row[0],
        user_id=int(row[1]),
        currency=row[2],
        type=ChangeType(row[3]),
        amount=parse_decimal(row[4]),
        available_after=parse_decimal(row[5]),
        frozen_after=parse_decimal(row[6]),
        version=int(row[7]),
        applied_at_ms=int(row[8]),
        memo=row[9],
    )


def _tsv_field(value: object) -> str:
    # LOAD DATA's default escaping: backslash, tab and newline are escaped with a backslash.
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class MysqlStore:
    """The Store interface on MySQL/MariaDB."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 15,
        queue_limit: int = 100,
        connect_timeout_s: float = 30.0,
        load_data: bool = False,
    ) -> None:
        self._url = MysqlUrl.parse(url)
        self._connect_timeout_s = connect_timeout_s
        self._load_data = load_data
        self._pool: ConnectionPool[Any] = ConnectionPool(
            self._connect,
            lambda connection: connection.close(),
            size=pool_size,
            queue_limit=queue_limit,
            wait_timeout_s=connect_timeout_s,
        )
        self._pinned = threading.local()

    # -- plumbing -------------------------------------------------------------
    def _connect(self, database: str | None = None) -> Any:
        try:
            return MySQLdb.connect(
                host=self._url.host,
                port=self._url.port,
                user=self._url.user,
                password=self._url.password,
                database=self._url.database if database is None else database,
                connect_timeout=max(1, int(self._connect_timeout_s)),
                charset="utf8mb4",
                autocommit=True,
                client_flag=CLIENT.FOUND_ROWS,
                conv=_CONVERSIONS,
                local_infile=self._load_data,
            )
        except MySQLdb.Error as exc:
            raise _translate(exc) from exc

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor outside any explicit transaction (or inside the pinned snapshot)."""
        pinned = getattr(self._pinned, "connection", None)
        if pinned is not None:
            with pinned.cursor() as cursor:
                yield cursor
            return
        try:
            with self._pool.connection() as connection, connection.cursor() as cursor:
                yield cursor
        except MySQLdb.Error as exc:
            raise _translate(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A read-write transaction; committed on normal exit, rolled back on error."""
        try:
            with self._pool.connection() as connection, connection.cursor() as cursor:
                cursor.execute("START TRANSACTION")
                try:
                    yield cursor
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
        except MySQLdb.Error as exc:
            raise _translate(exc) from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def migrate(self) -> None:
        bootstrap = self._connect(database="")
        try:
            with bootstrap.cursor() as cursor:
                cursor.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{self._url.database}`"
                    " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
        except MySQLdb.Error as exc:
            raise _translate(exc) from exc
        finally:
            bootstrap.close()
        with self._transaction() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)")
            cursor.execute("SELECT MAX(version) FROM schema_version")
            current = cursor.fetchone()[0] or 0
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            # MySQL commits DDL implicitly: each statement is idempotent instead.
            with self._cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                cursor.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def ping(self) -> None:
        self._query("SELECT 1")

    def close(self) -> None:
        self._pool.close()

    # -- outbox ---------------------------------------------------------------
    def accept_requests(
        self, request_ids: Collection[str], choose_new: ChooseNew, now_ms: int
    ) -> Mapping[str, StoredRequest]:
        with self._transaction() as cursor:
            existing = self._select_requests(cursor, list(request_ids))
            missing = [rid for rid in request_ids if rid not in existing]
            existing.update(
                (rid, entry.as_stored_request())
                for rid, entry in self._select_journal(cursor, missing).items()
            )
            new = sorted(choose_new(existing), key=lambda r: r.request_id)
            pending = int(ChangeStatus.PENDING)
            for chunk in _chunks(new):
                values = ",".join(
                    f"({_key(r.request_id)},{r.user_id},{_key(r.currency)},{int(r.type)},"
                    f"{format_amount(r.amount)},{_text(cursor, r.memo)},{pending},"
                    f"{now_ms},{now_ms})"
                    for r in chunk
                )
                cursor.execute(
                    "INSERT INTO change_requests (request_id, user_id, currency, type, amount,"
                    " memo, status, created_at_ms, updated_at_ms) VALUES " + values
                )
        return existing

    def _select_requests(self, cursor: Any, request_ids: Sequence[str]) -> dict[str, StoredRequest]:
        found: dict[str, StoredRequest] = {}
        for chunk in _chunks(request_ids, 5000):
            cursor.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM change_requests"
                f" WHERE request_id IN ({_keys(chunk)})"
            )
            for row in cursor.fetchall():
                found[row[0]] = _stored_request(row)
        return found

    def get_requests(self, request_ids: Collection[str]) -> Mapping[str, StoredRequest]:
        if not request_ids:
            return {}
        with self._cursor() as cursor:
            return self._select_requests(cursor, list(request_ids))

    def mark_sent(self, request_ids: Collection[str], now_ms: int) -> None:
        self._update_unsent(
            request_ids,
            "status = %s, sent_at_ms = %s, updated_at_ms = %s",
            [int(ChangeStatus.SENT), now_ms, now_ms],
        )

    def mark_failed(self, request_ids: Collection[str], now_ms: int) -> None:
        self._update_unsent(
            request_ids,
            "status = %s, attempts = attempts + 1, updated_at_ms = %s",
            [int(ChangeStatus.FAILED), now_ms],
        )

    def _update_unsent(
        self, request_ids: Collection[str], assignments: str, values: list[Any]
    ) -> None:
        ids = sorted(request_ids)
        with self._cursor() as cursor:
            for chunk in _chunks(ids, 5000):
                cursor.execute(
                    f"UPDATE change_requests SET {assignments}"
                    f" WHERE request_id IN ({_keys(chunk)}) AND status IN (%s, %s)",
                    [*values, int(ChangeStatus.PENDING), int(ChangeStatus.FAILED)],
                )

    def find_unsent(self, created_before_ms: int, limit: int) -> Sequence[UnsentRequest]:
        # Two index range scans instead of an OR that would defeat the status index.
        rows = self._query(
            f"(SELECT {_REQUEST_COLUMNS}, attempts, updated_at_ms, created_at_ms"
            " FROM change_requests WHERE status = %s AND created_at_ms < %s"
            " ORDER BY created_at_ms LIMIT %s)"
            f" UNION ALL (SELECT {_REQUEST_COLUMNS}, attempts, updated_at_ms, created_at_ms"
            " FROM change_requests WHERE status = %s ORDER BY created_at_ms LIMIT %s)",
            [int(ChangeStatus.PENDING), created_before_ms, limit, int(ChangeStatus.FAILED), limit],
        )
        rows.sort(key=lambda row: row[10])
        return [
            UnsentRequest(_stored_request(row), int(row[8]), int(row[9])) for row in rows[:limit]
        ]

    def count_unfinished(self) -> Mapping[ChangeStatus, int]:
        unfinished = (ChangeStatus.PENDING, ChangeStatus.SENT, ChangeStatus.FAILED)
        counts = dict.fromkeys(unfinished, 0)
        for status, count in self._query(
            "SELECT status, COUNT(*) FROM change_requests WHERE status IN (%s, %s, %s)"
            " GROUP BY status",
            [int(s) for s in unfinished],
        ):
            counts[ChangeStatus(status)] = int(count)
        return counts

    def delete_finished_requests(self, created_before_ms: int, limit: int, lock: LockToken) -> int:
        with self._transaction() as cursor:
            # A locking read: a plain SELECT would read this transaction's old snapshot.
            cursor.execute(
                "SELECT 1 FROM leader_locks WHERE name = %s AND owner = %s AND epoch = %s"
                f" AND expires_at_ms > {_DB_NOW_MS} FOR UPDATE",
                (lock.name, lock.owner, lock.epoch),
            )
            if cursor.fetchone() is None:
                raise Fenced(f"leader lock {lock.name}")
            cursor.execute(
                "DELETE FROM change_requests WHERE status IN (%s, %s) AND created_at_ms < %s"
                " ORDER BY status, created_at_ms LIMIT %s",
                (int(ChangeStatus.APPLIED), int(ChangeStatus.REJECTED), created_before_ms, limit),
            )
            return int(cursor.rowcount)

    # -- leader locks ---------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> int | None:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT IGNORE INTO leader_locks (name, owner, epoch, expires_at_ms)"
                " VALUES (%s, '', 0, 0)",
                (name,),
            )
            cursor.execute(
                f"UPDATE leader_locks SET owner = %s, epoch = epoch + 1,"
                f" expires_at_ms = {_DB_NOW_MS} + %s"
                f" WHERE name = %s AND expires_at_ms <= {_DB_NOW_MS}",
                (owner, ttl_ms, name),
            )
            if cursor.rowcount != 1:
                return None
            cursor.execute("SELECT epoch FROM leader_locks WHERE name = %s", (name,))
            (epoch,) = cursor.fetchone()
        return int(epoch)

    def renew_lock(self, token: LockToken, ttl_ms: int) -> bool:
        with self._cursor() as cursor:
            cursor.execute(
                f"UPDATE leader_locks SET expires_at_ms = {_DB_NOW_MS} + %s"
                " WHERE name = %s AND owner = %s AND epoch = %s"
                f" AND expires_at_ms > {_DB_NOW_MS}",
                (ttl_ms, token.name, token.owner, token.epoch),
            )
            return bool(cursor.rowcount == 1)

    def release_lock(self, token: LockToken) -> None:
        with self._cursor() as cursor:
            cursor.execute(
                "UPDATE leader_locks SET expires_at_ms = 0"
                " WHERE name = %s AND owner = %s AND epoch = %s",
                (token.name, token.owner, token.epoch),
            )

    # -- consumer -------------------------------------------------------------
    def claim_partition(self, topic: str, partition: int) -> PartitionClaim:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO partition_offsets (topic, partition_id, next_offset, epoch)"
                " VALUES (%s, %s, 0, 1) ON DUPLICATE KEY UPDATE epoch = epoch + 1",
                (topic, partition),
            )
            cursor.execute(
                "SELECT next_offset, epoch FROM partition_offsets"
                " WHERE topic = %s AND partition_id = %s",
                (topic, partition),
            )
            next_offset, epoch = cursor.fetchone()
        return PartitionClaim(topic, partition, int(epoch), int(next_offset))

    def load_balances(self, accounts: Collection[Account]) -> Mapping[Account, Balance]:
        found: dict[Account, Balance] = {}
        wanted = sorted(accounts, key=lambda a: (a.user_id, a.currency))
        with self._cursor() as cursor:
            for chunk in _chunks(wanted, 5000):
                wanted_keys = ",".join(f"({a.user_id},{_key(a.currency)})" for a in chunk)
                cursor.execute(
                    "SELECT user_id, currency, available, frozen, version FROM balances"
                    f" WHERE (user_id, currency) IN ({wanted_keys})"
                )
                for row in cursor.fetchall():
                    balance = _balance(row)
                    found[balance.account] = balance
        return found

    def commit_batch(self, batch: BatchCommit) -> None:
        with self._transaction() as cursor:
            for position in batch.positions:
                cursor.execute(
                    "UPDATE partition_offsets SET next_offset = %s"
                    " WHERE topic = %s AND partition_id = %s AND epoch = %s",
                    (position.next_offset, position.topic, position.partition, position.epoch),
                )
                if cursor.rowcount != 1:
                    raise Fenced(
                        f"partition {position.topic}/{position.partition}", position.partition
                    )
            self._upsert_balances(cursor, batch.balances)
            if self._load_data and batch.journal:
                self._load_journal(cursor, batch.journal)
            else:
                self._insert_journal(cursor, batch.journal)
            self._record_outcomes(cursor, batch)

    def _upsert_balances(self, cursor: Any, balances: Sequence[Balance]) -> None:
        ordered = sorted(balances, key=lambda b: (b.user_id, b.currency))
        for chunk in _chunks(ordered):
            values = ",".join(
                f"({b.user_id},{_key(b.currency)},{format_amount(b.available)},"
                f"{format_amount(b.frozen)},{b.version})"
                for b in chunk
            )
            cursor.execute(
                "INSERT INTO balances (user_id, currency, available, frozen, version) VALUES "
                + values
                + " ON DUPLICATE KEY UPDATE available = VALUES(available),"
                " frozen = VALUES(frozen), version = VALUES(version)"
            )

    @staticmethod
    def _journal_row(e: JournalEntry) -> list[Any]:
        return [
            e.request_id, e.user_id, e.currency, int(e.type), format_amount(e.amount),
            format_amount(e.available_after), format_amount(e.frozen_after), e.version,
            e.applied_at_ms, e.memo,
        ]  # fmt: skip

    def _insert_journal(self, cursor: Any, journal: Sequence[JournalEntry]) -> None:
        for chunk in _chunks(journal):
            values = ",".join(
                f"({_key(e.request_id)},{e.user_id},{_key(e.currency)},{int(e.type)},"
                f"{format_amount(e.amount)},{format_amount(e.available_after)},"
                f"{format_amount(e.frozen_after)},{e.version},{e.applied_at_ms},"
                f"{_text(cursor, e.memo)})"
                for e in chunk
            )
            cursor.execute(f"INSERT INTO journal ({_JOURNAL_COLUMNS}) VALUES " + values)

    def _load_journal(self, cursor: Any, journal: Sequence[JournalEntry]) -> None:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".tsv", delete=False) as f:
            for e in journal:
                f.write("\t".join(_tsv_field(v) for v in self._journal_row(e)) + "\n")
            path = f.name
        try:
            cursor.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE journal CHARACTER SET utf8mb4"
                f" FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({_JOURNAL_COLUMNS})",
                (path,),
            )
            if cursor.rowcount != len(journal):
                # LOAD DATA skips duplicate keys with a warning instead of failing.
                raise TransientStoreError(
                    f"LOAD DATA wrote {cursor.rowcount} of {len(journal)} journal rows"
                )
        finally:
            os.unlink(path)

    def _record_outcomes(self, cursor: Any, batch: BatchCommit) -> None:
        by_outcome: dict[tuple[int, int], list[str]] = {}
        for outcome in batch.outcomes:
            key = (int(outcome.status), int(outcome.reject_reason))
            by_outcome.setdefault(key, []).append(outcome.request_id)
        for (status, reason), ids in sorted(by_outcome.items()):
            for chunk in _chunks(sorted(ids), 5000):
                cursor.execute(
                    f"UPDATE change_requests SET status = {status}, reject_reason = {reason},"
                    f" applied_at_ms = {batch.applied_at_ms}, updated_at_ms = {batch.applied_at_ms}"
                    f" WHERE request_id IN ({_keys(chunk)})"
                )

    # -- reads ----------------------------------------------------------------
    def get_balances(self, user_id: int, currency: str | None) -> Sequence[Balance]:
        sql = (
            "SELECT user_id, currency, available, frozen, version FROM balances WHERE user_id = %s"
        )
        params: list[Any] = [user_id]
        if currency is not None:
            sql += " AND currency = %s"
            params.append(currency)
        return [_balance(row) for row in self._query(sql + " ORDER BY currency", params)]

    def get_journal(
        self, user_id: int, currency: str, after_version: int, limit: int
    ) -> Sequence[JournalEntry]:
        rows = self._query(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE user_id = %s AND currency = %s"
            " AND version > %s ORDER BY version LIMIT %s",
            (user_id, currency, after_version, limit),
        )
        return [_journal_entry(row) for row in rows]

    def get_journal_entries(self, request_ids: Collection[str]) -> Mapping[str, JournalEntry]:
        if not request_ids:
            return {}
        with self._cursor() as cursor:
            return self._select_journal(cursor, list(request_ids))

    def _select_journal(self, cursor: Any, request_ids: Sequence[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(request_ids, 5000):
            cursor.execute(
                f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE request_id IN ({_keys(chunk)})"
            )
            for row in cursor.fetchall():
                found[row[0]] = _journal_entry(row)
        return found

    def get_positions(self, topic: str) -> Mapping[int, int]:
        rows = self._query(
            "SELECT partition_id, next_offset FROM partition_offsets WHERE topic = %s", (topic,)
        )
        return {int(row[0]): int(row[1]) for row in rows}

    # -- audit scans ----------------------------------------------------------
    def snapshot(self) -> AbstractContextManager[None]:
        return self._snapshot()

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        try:
            with self._pool.connection() as connection:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                self._pinned.connection = connection
                try:
                    yield
                finally:
                    self._pinned.connection = None
                    connection.rollback()
        except MySQLdb.Error as exc:
            raise _translate(exc) from exc

    def scan_balances(self, after: Account | None, limit: int) -> Sequence[Balance]:
        condition, params = "", []
        if after is not None:
            condition = "WHERE (user_id, currency) > (%s, %s)"
            params = [after.user_id, after.currency]
        rows = self._query(
            f"SELECT user_id, currency, available, frozen, version FROM balances {condition}"
            " ORDER BY user_id, currency LIMIT %s",
            [*params, limit],
        )
        return [_balance(row) for row in rows]

    def scan_journal(
        self, after: tuple[int, str, int] | None, limit: int
    ) -> Sequence[JournalEntry]:
        condition, params = "", []
        if after is not None:
            condition = "WHERE (user_id, currency, version) > (%s, %s, %s)"
            params = list(after)
        rows = self._query(
            f"SELECT {_JOURNAL_COLUMNS} FROM journal {condition}"
            " ORDER BY user_id, currency, version LIMIT %s",
            [*params, limit],
        )
        return [_journal_entry(row) for row in rows]

    def scan_requests(self, after: str | None, limit: int) -> Sequence[StoredRequest]:
        rows = self._query(
            f"SELECT {_REQUEST_COLUMNS} FROM change_requests WHERE request_id > %s"
            " ORDER BY request_id LIMIT %s",
            (after or "", limit),
        )
        return [_stored_request(row) for row in rows]
