"""What differs between SQL engines, and nothing else.

The core (``core.py``) writes every statement once. A dialect contributes the
engine's value encoding, a few clauses whose syntax differs (upsert, the
database clock, a limited DELETE, row-value IN lists), how connections and
transactions are handled, an optional bulk-load path, and whether rows are bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

Row = Sequence[Any]


class Outcome(NamedTuple):
    """What one statement of ``Session.batch`` did."""

    affected: int  # rows written or matched (UPDATE); rows returned (a query)
    rows: list[Row]  # a query's rows; empty for any other statement
    warnings: int  # the engine's warnings for this statement (MySQL; 0 elsewhere)


class Session(Protocol):
    """One connection lent for a block of statements: a transaction, or autocommit."""

    def execute(self, sql: str, params: Sequence[object] | None = None) -> int:
        """Run one statement; returns the rows it matched (UPDATE) or wrote.

        With ``params``, ``?`` marks each parameter. Without, the text runs as
        is: statements built from literals (free text among them) never take
        parameters, so no placeholder syntax can hide in their text.
        """

    def query(self, sql: str, params: Sequence[object] | None = None) -> list[Row]:
        """The rows of one query (``params`` as in ``execute``)."""

    def batch(self, sql: Sequence[str], *, commit: bool = False) -> list[Outcome]:
        """Run parameterless statements in order, in as few round trips as the engine
        allows (MySQL: one multi-statement call), and return what each did.

        The first statement that fails raises (as ``execute`` would) and the ones after
        it do not run; inside ``transaction`` the whole transaction then rolls back.
        ``commit``: the transaction commits right after the last statement (on MySQL in
        the same round trip); only as the block's last call, since nothing after it is
        part of the transaction.
        """

    def execute_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        """Run one statement (``?`` marking each parameter) once for each row of values
        bound to it; returns the rows it wrote (a skipped conflict writes none)."""

    def text(self, value: str) -> str:
        """Free text (a memo) as a quoted string literal of this engine."""


class Encoding(Protocol):
    """How the engine stores the values whose type it does not have."""

    # Stored user_id = user_id - user_offset (SQLite's integers are signed 64-bit).
    user_offset: int
    # Wrapped around an amount literal: "'" where amounts are stored as text.
    amount_quote: str
    # The largest integer a parameter may carry.
    max_integer: int


class Dialect(Encoding, Protocol):
    """An SQL engine as the core sees it."""

    name: str  # picks the engine's DDL in the migrations: "sqlite" or "mysql"
    # An SQL expression: the database's clock in Unix milliseconds.
    db_now_ms: str
    # Appended to a read that must lock what it reads inside a transaction.
    locking_read: str
    # A query with one parameter (a table name) that returns a row if the table exists.
    table_exists_sql: str
    # True when ``bulk_insert`` should write the journal instead of INSERT statements
    # (MySQL: LOAD DATA, when configured; SQLite: its rows bound, always).
    bulk_load: bool
    # True when the hottest multi-row INSERTs (outbox rows, balances; the journal goes
    # through ``bulk_insert``) bind their rows' values to one statement
    # (``Session.execute_rows``) instead of writing them as literals: for an engine that
    # compiles each statement text anew, in process, where a call costs no round trip
    # (SQLite: 7.5 -> 3.2 µs an outbox row).
    binds_rows: bool

    # -- clauses --------------------------------------------------------------
    def on_conflict_update(self, keys: Sequence[str], assignments: str) -> str:
        """Appended to an INSERT: on a duplicate ``keys``, apply ``assignments`` instead."""

    def on_conflict_ignore(self, keys: Sequence[str]) -> str:
        """Appended to an INSERT: on a duplicate ``keys``, keep the existing row."""

    def insert_ignoring(self, insert: str, keys: Sequence[str]) -> str:
        """``insert`` (an ``INSERT … VALUES``) made to skip the rows whose ``keys`` are
        taken; its ``Outcome.affected`` is the rows it wrote. When it wrote every row, any
        warning is a value the engine altered that a plain INSERT would have refused."""

    def excluded(self, column: str) -> str:
        """Inside ``on_conflict_update``: the value the INSERT proposed for ``column``."""

    def delete_first(self, table: str, key: str, where: str, order_by: str) -> str:
        """DELETE the first rows matching ``where`` in ``order_by``; one ``?``: how many."""

    # -- connections ------------------------------------------------------------
    def ping(self) -> None:
        """Check the database answers, and would take a write now.

        Raises:
            StoreReadOnly: it answers reads but refuses writes.
            StoreUnavailable: it does not answer.
        """

    def transaction(self) -> AbstractContextManager[Session]:
        """A read-write transaction, committed on normal exit (unless ``Session.batch``
        committed it), rolled back on error. It begins with its first statement, in the
        same round trip.

        Raises:
            TransientStoreError: deadlock, lock wait timeout or a duplicate key.
            StoreUnavailable: the database cannot be used.
        """

    def autocommit(self) -> AbstractContextManager[Session]:
        """Statements that each commit on their own (or read the thread's snapshot)."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads by this thread inside the block see one consistent state."""

    def exclusive(self) -> AbstractContextManager[Session]:
        """A session only one process holds at a time (for migrations), the database
        created if missing."""

    def database_exists(self) -> bool:
        """Whether the database has been created (without creating it)."""

    def bulk_insert(
        self, session: Session, table: str, columns: str, rows: Sequence[Sequence[object]]
    ) -> None:
        """Load rows of raw stored values in one bulk operation (if ``bulk_load``)."""

    def close(self) -> None:
        """Release every connection; idempotent."""
