"""MySQL 8 / MariaDB 10.11+ (driver: mysqlclient), through a bounded connection pool.

Connections are opened with CLIENT.FOUND_ROWS so an UPDATE reports rows
matched, which the offset compare-and-set relies on, and CLIENT.MULTI_STATEMENTS so
a transaction's statements travel together: START TRANSACTION with the first
statement, COMMIT with the last where nothing is checked in between (each round
trip costs about 100 µs of client CPU plus the server's per-command work). Every
statement sent that way is built from validated literals or escaped by the driver,
as any statement here is. DECIMAL columns are read
as text, never as float. The journal can go through ``LOAD DATA LOCAL
INFILE`` instead of INSERTs (``LEDGERD_MYSQL_LOAD_DATA``).
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import MySQLdb
from MySQLdb.constants import CLIENT, FIELD_TYPE
from MySQLdb.converters import conversions

from ledgerd.errors import (
    LedgerError,
    StoreReadOnly,
    StoreRejected,
    StoreUnavailable,
    TransientStoreError,
)
from ledgerd.store.pool import ConnectionPool
from ledgerd.store.sql.dialect import Outcome, Row, Session

_DEADLOCK, _LOCK_WAIT_TIMEOUT, _DUPLICATE_KEY = 1213, 1205, 1062
# The server answers but refuses writes: read_only (1290, a replica or a failed-over
# primary), a read-only transaction (1792), innodb_read_only (1036), no write privilege
# (1142). Retriable, and not the record's fault: nothing here may dead-letter a message.
_REFUSES_WRITES = frozenset({1290, 1792, 1036, 1142})
# Health's write probe: refused like any write when the server is read-only, yet it
# changes nothing (no row matches), so a probe each second costs no binlog or undo.
_WRITE_PROBE = "UPDATE leader_locks SET owner = owner WHERE 1 = 0"
# The server refuses the values themselves (strict mode): the same statement fails the same
# way every time, so retrying it only stalls the partition. Codes of values and constraints
# only; a statement or schema error (unknown column 1054, no such table 1146, syntax 1064)
# would refuse every record alike, so it stays "unavailable" and pauses instead of
# dead-lettering the whole stream.
DETERMINISTIC_CODES = frozenset(
    {
        1048,  # ER_BAD_NULL_ERROR: column cannot be null
        1263,  # ER_WARN_NULL_TO_NOTNULL
        1264,  # ER_WARN_DATA_OUT_OF_RANGE
        1265,  # WARN_DATA_TRUNCATED
        1292,  # ER_TRUNCATED_WRONG_VALUE
        1300,  # ER_INVALID_CHARACTER_STRING
        1364,  # ER_NO_DEFAULT_FOR_FIELD
        1366,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: incorrect value
        1367,  # ER_ILLEGAL_VALUE_FOR_TYPE
        1406,  # ER_DATA_TOO_LONG
        1411,  # ER_WRONG_VALUE_FOR_TYPE
        1216,  # ER_NO_REFERENCED_ROW (foreign key, old form)
        1217,  # ER_ROW_IS_REFERENCED
        1451,  # ER_ROW_IS_REFERENCED_2
        1452,  # ER_NO_REFERENCED_ROW_2
        1690,  # ER_DATA_OUT_OF_RANGE: arithmetic overflow
        3819,  # ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
        4025,  # ER_CONSTRAINT_FAILED: a CHECK constraint (MariaDB)
    }
)
_CONVERSIONS = {**conversions, FIELD_TYPE.NEWDECIMAL: str, FIELD_TYPE.DECIMAL: str}
# Sent ahead of a transaction's first statement, in its round trip.
_BEGIN = "START TRANSACTION;"
# A multi-statement call is cut before it grows past this many bytes (well under the
# server's max_allowed_packet, 16 MiB by default on MariaDB 10.11 and MySQL 8).
_PACKET_BYTES = 4 << 20


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


def translate(exc: MySQLdb.Error) -> LedgerError:
    """Map a driver error to ledgerd's hierarchy (retriable or not).

    Deadlocks, lock waits and a lost insert race may succeed next time; values the server
    refuses never will (``StoreRejected``); a server that refuses writes (read-only or
    failed over: 1290, 1792, 1036, 1142) is ``StoreReadOnly``, retriable; anything else
    (connection lost, timeouts) is the database being unusable now.
    """
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    if code in _REFUSES_WRITES:
        return StoreReadOnly(f"mysql {code}: {exc.args[-1]}")
    if code in (_DEADLOCK, _LOCK_WAIT_TIMEOUT, _DUPLICATE_KEY):
        return TransientStoreError(f"mysql {code}: {exc.args[-1]}")
    if code in DETERMINISTIC_CODES:
        return StoreRejected(f"mysql {code}: {exc.args[-1]}", code)
    return StoreUnavailable(f"mysql {code}: {exc.args[-1] if exc.args else exc}")


def _is_on(value: object) -> bool:
    """A server variable's truth: 1 on MySQL, ON or NO_LOCK… where MariaDB 11 made it a set."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.upper() not in {"", "0", "OFF"}


@functools.lru_cache(maxsize=256)
def _with_format_placeholders(sql: str) -> str:
    # The core's parameter statements are a small fixed set: translate each once.
    return sql.replace("?", "%s")


def tsv_field(value: object) -> str:
    # LOAD DATA's default escaping: backslash, tab and newline are escaped with a backslash.
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class MysqlSession:
    """Statements on one connection. In a transaction, ``begin`` (START TRANSACTION) is
    sent with the first statement instead of in a round trip of its own."""

    __slots__ = ("begin", "committed", "cursor", "sent")

    def __init__(self, cursor: Any, begin: str = "") -> None:
        self.cursor = cursor
        self.begin = begin
        self.sent = False  # anything sent: a transaction may be open
        self.committed = False  # ``batch(commit=True)`` committed the transaction

    def _send(self, sql: str, params: Sequence[object] | None) -> None:
        """Send ``sql`` (after ``begin``, once), its first result current."""
        self.sent = True
        if not self.begin:
            self.cursor.execute(sql, params)
            return
        begin, self.begin = self.begin, ""
        # Parameters fill ``%s`` only: the START TRANSACTION text has none.
        self.cursor.execute(begin + sql, params)
        self.cursor.nextset()  # past START's result to the statement's (raises if it failed)

    def execute(self, sql: str, params: Sequence[object] | None = None) -> int:
        if params is not None:
            sql = _with_format_placeholders(sql)
        self._send(sql, params)
        return int(self.cursor.rowcount)

    def query(self, sql: str, params: Sequence[object] | None = None) -> list[Row]:
        self.execute(sql, params)
        return list(self.cursor.fetchall())

    def batch(self, sql: Sequence[str], *, commit: bool = False) -> list[Outcome]:
        texts = [*sql, "COMMIT"] if commit else list(sql)
        outcomes: list[Outcome] = []
        for packet in _packets(texts):
            self._send(";".join(packet), None)
            for index in range(len(packet)):
                if index:
                    # The next statement's result; raises that statement's error (the
                    # server ran none after it).
                    self.cursor.nextset()
                cursor = self.cursor
                rows = list(cursor.fetchall()) if cursor.description is not None else []
                outcomes.append(Outcome(int(cursor.rowcount), rows, int(cursor.warning_count)))
        if commit:
            outcomes.pop()
            self.committed = True
        return outcomes

    def execute_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        # Not on a hot path here (``binds_rows`` is False): a statement per row, as the
        # driver's executemany would run an upsert anyway.
        return sum(self.execute(sql, row) for row in rows)

    def text(self, value: str) -> str:
        if not value:
            return "''"
        # The C escaper of the connection, which knows its character set.
        literal: bytes = self.cursor.connection.string_literal(value.encode("utf-8"))
        return literal.decode("utf-8")


def _packets(texts: Sequence[str]) -> Iterator[Sequence[str]]:
    """``texts`` cut into runs of at most ``_PACKET_BYTES`` characters (one statement
    over it goes alone, as it would by itself)."""
    start, size = 0, 0
    for index, text in enumerate(texts):
        if index > start and size + len(text) > _PACKET_BYTES:
            yield texts[start:index]
            start, size = index, 0
        size += len(text) + 1
    if start < len(texts):
        yield texts[start:]


class MysqlDialect:
    name = "mysql"
    user_offset = 0
    amount_quote = ""
    max_integer = 2**64 - 1
    # The database clock in Unix milliseconds (MySQL and MariaDB).
    db_now_ms = "CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)"
    locking_read = " FOR UPDATE"
    # Multi-row INSERT text: one round trip, where binding would cost one a row.
    binds_rows = False
    table_exists_sql = (
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
    )

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 15,
        queue_limit: int = 100,
        connect_timeout_s: float = 30.0,
        load_data: bool = False,
    ) -> None:
        self.url = MysqlUrl.parse(url)
        self.bulk_load = load_data
        self._connect_timeout_s = connect_timeout_s
        self._pool: ConnectionPool[Any] = ConnectionPool(
            self._connect,
            lambda connection: connection.close(),
            size=pool_size,
            queue_limit=queue_limit,
            wait_timeout_s=connect_timeout_s,
        )
        self._pinned = threading.local()

    # -- clauses --------------------------------------------------------------
    def on_conflict_update(self, keys: Sequence[str], assignments: str) -> str:
        return f"ON DUPLICATE KEY UPDATE {assignments}"

    def on_conflict_ignore(self, keys: Sequence[str]) -> str:
        # Not INSERT IGNORE, which would also turn a too-long value into a warning.
        return f"ON DUPLICATE KEY UPDATE {keys[0]} = {keys[0]}"

    def insert_ignoring(self, insert: str, keys: Sequence[str]) -> str:
        # ON DUPLICATE KEY UPDATE cannot say which rows it skipped: with CLIENT.FOUND_ROWS a
        # row "updated" to itself counts like an inserted one. INSERT IGNORE counts only
        # the rows written, but turns a refused value into a warning as well as a
        # duplicate: when no row was skipped, any warning is such a value.
        assert insert.startswith("INSERT INTO ")
        return "INSERT IGNORE" + insert.removeprefix("INSERT")

    def excluded(self, column: str) -> str:
        # VALUES(): MariaDB has no row alias (MySQL 8.0.19's ``AS new``).
        return f"VALUES({column})"

    def delete_first(self, table: str, key: str, where: str, order_by: str) -> str:
        return f"DELETE FROM {table} WHERE {where} ORDER BY {order_by} LIMIT ?"

    # -- connections ------------------------------------------------------------
    def _connect(self, database: str | None = None) -> Any:
        try:
            return MySQLdb.connect(
                host=self.url.host,
                port=self.url.port,
                user=self.url.user,
                password=self.url.password,
                database=self.url.database if database is None else database,
                connect_timeout=max(1, int(self._connect_timeout_s)),
                charset="utf8mb4",
                autocommit=True,
                client_flag=CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS,
                conv=_CONVERSIONS,
                local_infile=self.bulk_load,
            )
        except MySQLdb.Error as exc:
            raise translate(exc) from exc

    def ping(self) -> None:
        # The variables name the cause; the probe catches what they do not show (a
        # read-only session, missing privileges). A user with SUPER may still write to
        # a read_only server, which is exactly the replica it must not write to.
        with self.autocommit() as session:
            ((read_only, innodb_read_only),) = session.query(
                "SELECT @@global.read_only, @@global.innodb_read_only"
            )
            if _is_on(read_only) or _is_on(innodb_read_only):
                variable = "read_only" if _is_on(read_only) else "innodb_read_only"
                raise StoreReadOnly(f"mysql @@{variable} is ON (a replica, or failed over?)")
            session.execute(_WRITE_PROBE)

    @contextmanager
    def transaction(self) -> Iterator[MysqlSession]:
        try:
            with self._pool.connection() as connection, connection.cursor() as cursor:
                session = MysqlSession(cursor, _BEGIN)
                try:
                    yield session
                except BaseException:
                    if session.sent:
                        connection.rollback()
                    raise
                if session.sent and not session.committed:
                    connection.commit()
        except MySQLdb.Error as exc:
            raise translate(exc) from exc

    @contextmanager
    def autocommit(self) -> Iterator[MysqlSession]:
        pinned = getattr(self._pinned, "connection", None)
        try:
            if pinned is not None:
                with pinned.cursor() as cursor:
                    yield MysqlSession(cursor)
                return
            with self._pool.connection() as connection, connection.cursor() as cursor:
                yield MysqlSession(cursor)
        except MySQLdb.Error as exc:
            raise translate(exc) from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
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
            raise translate(exc) from exc

    @contextmanager
    def exclusive(self) -> Iterator[MysqlSession]:
        self._create_database()
        # A named lock serialises migrators: DDL commits implicitly, so no
        # transaction could. The server frees it if this connection dies.
        lock_name = f"ledgerd-migrate:{self.url.database}"[:64]
        with self.autocommit() as session:
            ((got,),) = session.query(
                "SELECT GET_LOCK(?, ?)", [lock_name, max(1, int(self._connect_timeout_s))]
            )
            if got != 1:
                raise StoreUnavailable(f"another process holds {lock_name!r}: timed out")
            try:
                yield session
            finally:
                session.query("SELECT RELEASE_LOCK(?)", [lock_name])

    def _create_database(self) -> None:
        bootstrap = self._connect(database="")
        try:
            with bootstrap.cursor() as cursor:
                cursor.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{self.url.database}`"
                    " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
        except MySQLdb.Error as exc:
            raise translate(exc) from exc
        finally:
            bootstrap.close()

    def database_exists(self) -> bool:
        bootstrap = self._connect(database="")
        try:
            with bootstrap.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                    (self.url.database,),
                )
                return cursor.fetchone() is not None
        except MySQLdb.Error as exc:
            raise translate(exc) from exc
        finally:
            bootstrap.close()

    def bulk_insert(
        self, session: Session, table: str, columns: str, rows: Sequence[Sequence[object]]
    ) -> None:
        assert isinstance(session, MysqlSession)  # sessions come from this dialect
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".tsv", delete=False) as f:
            for row in rows:
                f.write("\t".join(tsv_field(v) for v in row) + "\n")
            path = f.name
        try:
            session.cursor.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4"
                f" FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({columns})",
                (path,),
            )
            if session.cursor.rowcount != len(rows):
                # LOAD DATA skips duplicate keys with a warning instead of failing.
                raise TransientStoreError(
                    f"LOAD DATA wrote {session.cursor.rowcount} of {len(rows)} {table} rows"
                )
            warnings = session.cursor.connection.warning_count()
            if warnings:
                # LOAD DATA LOCAL turns strict-mode errors into warnings: a value it
                # truncated or clamped must fail the batch, not land altered.
                raise StoreRejected(f"LOAD DATA into {table}: {warnings} warnings")
        finally:
            os.unlink(path)

    def close(self) -> None:
        self._pool.close()
