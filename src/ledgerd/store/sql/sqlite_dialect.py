"""SQLite: one file in WAL mode with synchronous=FULL, one connection per thread.

SQLite integers are signed 64-bit, so user ids (unsigned 64-bit) are stored
shifted by 2**63, which keeps their order. Amounts are canonical decimal text:
DECIMAL(38,18) does not fit any SQLite number type exactly. Writes take the
write lock up front (``BEGIN IMMEDIATE``), so the whole database is the lock
a locking read would take elsewhere.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ledgerd.errors import StoreReadOnly, StoreUnavailable
from ledgerd.store.sql.dialect import Outcome, Row, Session
from ledgerd.store.sql.statements import bound_insert
from ledgerd.support.sqlite import ThreadConnections


def text_literal(value: str) -> str:
    """Free text as an SQLite string literal (quotes doubled; NUL is never valid text here).

    Raises:
        ValueError: the text contains NUL, which SQL text cannot carry.
    """
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


class SqliteSession:
    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] | None = None) -> int:
        return self._connection.execute(sql, () if params is None else params).rowcount

    def query(self, sql: str, params: Sequence[object] | None = None) -> list[Row]:
        return self._connection.execute(sql, () if params is None else params).fetchall()

    def batch(self, sql: Sequence[str], *, commit: bool = False) -> list[Outcome]:
        # In-process: no round trips to save. The block's end commits (``commit`` asks
        # for that and nothing more: the block's last call).
        outcomes = []
        for text in sql:
            cursor = self._connection.execute(text)
            if cursor.description is None:
                outcomes.append(Outcome(cursor.rowcount, [], 0))
            else:
                rows = cursor.fetchall()
                outcomes.append(Outcome(len(rows), rows, 0))
        return outcomes

    def execute_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        # Compiled once (and kept in the connection's statement cache), each row bound.
        return self._connection.executemany(sql, rows).rowcount

    def text(self, value: str) -> str:
        return text_literal(value)


class SqliteDialect:
    name = "sqlite"
    user_offset = 2**63
    amount_quote = "'"
    max_integer = 2**63 - 1
    db_now_ms = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    locking_read = ""  # BEGIN IMMEDIATE already holds the database's write lock
    table_exists_sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    # The journal's bulk path binds its rows (``binds_rows``), no file load.
    bulk_load = True
    binds_rows = True

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._db = ThreadConnections(path, StoreUnavailable, busy_timeout_s, stopped=StoreReadOnly)

    def ping(self) -> None:
        self._db.read("SELECT 1")
        if self._db.fault is not None:
            raise StoreReadOnly(f"writes stopped after {self._db.fault}; restart once fixed")

    def on_conflict_update(self, keys: Sequence[str], assignments: str) -> str:
        return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {assignments}"

    def on_conflict_ignore(self, keys: Sequence[str]) -> str:
        return f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"

    def insert_ignoring(self, insert: str, keys: Sequence[str]) -> str:
        # DO NOTHING covers the unique keys only (INSERT OR IGNORE would skip bad rows too).
        return f"{insert} {self.on_conflict_ignore(keys)}"

    def excluded(self, column: str) -> str:
        return f"excluded.{column}"

    def delete_first(self, table: str, key: str, where: str, order_by: str) -> str:
        # DELETE … LIMIT needs a compile-time option; select the keys instead.
        return (
            f"DELETE FROM {table} WHERE {key} IN"
            f" (SELECT {key} FROM {table} WHERE {where} ORDER BY {order_by} LIMIT ?)"
        )

    @contextmanager
    def transaction(self) -> Iterator[SqliteSession]:
        with self._db.write() as connection:
            yield SqliteSession(connection)

    @contextmanager
    def autocommit(self) -> Iterator[SqliteSession]:
        with self._db.autocommit() as connection:
            yield SqliteSession(connection)

    def snapshot(self) -> AbstractContextManager[None]:
        return self._db.snapshot()

    def exclusive(self) -> AbstractContextManager[SqliteSession]:
        # DDL is transactional in SQLite: the write lock serialises migrators
        # and a crash leaves no half-applied step.
        return self.transaction()

    def database_exists(self) -> bool:
        return self.path.exists()

    def bulk_insert(
        self, session: Session, table: str, columns: str, rows: Sequence[Sequence[object]]
    ) -> None:
        session.execute_rows(bound_insert(table, columns), rows)

    def close(self) -> None:
        self._db.close()
