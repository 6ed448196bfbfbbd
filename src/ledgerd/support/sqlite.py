"""Per-thread SQLite connections in WAL mode with synchronous=FULL.

SQLite connections must not be shared between threads mid-transaction, so
each thread gets its own; writes take the write lock up front
(``BEGIN IMMEDIATE``) instead of failing when a read upgrades to a write.

An I/O error, a full disk, corruption or a file turned read-only (SQLITE_IOERR,
SQLITE_FULL, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_READONLY) stops writes until the
process restarts: after a failed fsync the kernel may have dropped the dirty pages and
report success next time (PostgreSQL's "fsyncgate"), so carrying on could commit on top
of a state that never reached the disk. Reads go on; ``fault`` says why writes stopped.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledgerd.errors import BackendUnavailable, LedgerError, StoreRejected, TransientStoreError

# Primary result codes after which the file cannot be trusted to hold what was written.
_FATAL_CODES = frozenset(
    {
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_READONLY,
    }
)


class ThreadConnections:
    """Opens one connection per calling thread; ``close`` closes them all.

    ``stopped`` is the error of a write refused once writes stopped (``unavailable``
    unless given).
    """

    def __init__(
        self,
        path: Path,
        unavailable: type[BackendUnavailable],
        busy_timeout_s: float = 30.0,
        *,
        stopped: type[BackendUnavailable] | None = None,
    ) -> None:
        self.path = path
        self._unavailable = unavailable
        self._stopped = stopped or unavailable
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._fault: str | None = None

    @property
    def fault(self) -> str | None:
        """Why writes stopped (None while they have not): the first fatal error."""
        return self._fault

    def _translate(self, exc: sqlite3.Error) -> LedgerError:
        """The ledgerd error of a driver error. A lost insert race may succeed next time;
        values SQLite refuses (a CHECK, NOT NULL or foreign-key constraint, a string or
        blob over its limits) never will; a fatal error stops writes first."""
        if isinstance(exc, sqlite3.IntegrityError):
            message = str(exc)
            if message.startswith("UNIQUE") or "PRIMARY KEY" in message:
                return TransientStoreError(f"constraint violated: {exc}")
            return StoreRejected(f"sqlite: {exc}")
        if isinstance(exc, sqlite3.DataError):
            return StoreRejected(f"sqlite: {exc}")
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _FATAL_CODES:
            self._stop_writes(f"{getattr(exc, 'sqlite_errorname', code)}: {exc}")
            return self._writes_stopped()
        return self._unavailable(f"sqlite: {exc}")

    def _stop_writes(self, why: str) -> None:
        with self._lock:
            if self._fault is None:
                self._fault = why

    def _writes_stopped(self) -> BackendUnavailable:
        return self._stopped(
            f"{self.path}: writes stopped after {self._fault}; fix the disk, then restart"
        )

    def get(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        with self._lock:
            if self._closed:
                raise self._unavailable(f"{self.path} is closed")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout_s,
                    isolation_level=None,  # transactions are explicit, see write()
                    check_same_thread=False,  # close() runs on another thread
                )
                _enter_wal_mode(connection, self._busy_timeout_s)
                connection.execute("PRAGMA synchronous=FULL")
            except (sqlite3.Error, OSError) as exc:
                raise self._unavailable(f"cannot open {self.path}: {exc}") from exc
            self._all.append(connection)
        self._local.connection = connection
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on normal exit, rolled back on any error.

        Raises:
            TransientStoreError: a uniqueness constraint failed (a lost race).
            StoreRejected: another constraint failed, or a value is too big.
            BackendUnavailable: the database file cannot be used, or writes stopped
                (``stopped``) after a fatal error.
        """
        if self._fault is not None:
            raise self._writes_stopped()
        connection = self.get()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors (a full disk, an I/O error);
                # after a failed COMMIT (busy) the transaction would otherwise stay open.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    @contextmanager
    def autocommit(self) -> Iterator[sqlite3.Connection]:
        """The thread's connection for statements that each commit on their own
        (or that read inside this thread's ``snapshot``).

        Raises:
            TransientStoreError: a uniqueness constraint failed (a lost race).
            StoreRejected: another constraint failed, or a value is too big.
            BackendUnavailable: the database file cannot be used, or writes stopped
                (``stopped``) after a fatal error.
        """
        connection = self.get()
        if self._fault is not None and not getattr(self._local, "query_only", False):
            # Statements here may write: once writes stopped, SQLite itself refuses them.
            try:
                connection.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            self._local.query_only = True
        try:
            yield connection
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: in WAL mode its reads all see one committed state."""
        connection = self.get()
        try:
            connection.execute("BEGIN")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            yield
        finally:
            connection.execute("COMMIT")

    def read(self, sql: str, params: Any = ()) -> list[Any]:
        """Rows of one query, outside any explicit transaction."""
        try:
            return self.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()


def _enter_wal_mode(connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch the file to WAL, waiting out other connections doing the same.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers "database
    is locked" at once, without its busy handler, to a connection that asks while
    another one switches. Once one has switched, the mode is kept in the file and
    the pragma is a no-op, so retrying until the busy timeout is enough.
    """
    deadline = time.monotonic() + busy_timeout_s
    delay_s = 0.005
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay_s > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.1)
