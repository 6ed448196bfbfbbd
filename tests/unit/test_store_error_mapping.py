"""Driver errors map at the adapter boundary: refused values are not retriable, the rest is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import MySQLdb
import pytest

from ledgerd.errors import StoreReadOnly, StoreRejected, StoreUnavailable, TransientStoreError
from ledgerd.store.sql.mysql_dialect import DETERMINISTIC_CODES, translate
from ledgerd.support.sqlite import ThreadConnections

REFUSED_VALUES = {
    1048: "Column 'memo' cannot be null",
    1264: "Out of range value for column 'available' at row 1",
    1366: "Incorrect decimal value: 'x' for column 'amount' at row 1",
    1406: "Data too long for column 'memo' at row 1",
    1452: "Cannot add or update a child row: a foreign key constraint fails",
    3819: "Check constraint 'c' is violated.",
    4025: "CONSTRAINT `c` failed for `db`.`journal`",
}


@pytest.mark.parametrize("code", sorted(REFUSED_VALUES))
def test_mysql_refused_values_are_store_rejected(code: int) -> None:
    """Out of range, too long, incorrect value, NULL, constraints: not retriable."""
    error = translate(MySQLdb.OperationalError(code, REFUSED_VALUES[code]))
    assert isinstance(error, StoreRejected)
    assert not error.retriable
    assert error.code == code
    assert str(code) in str(error)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (1213, TransientStoreError),  # deadlock
        (1205, TransientStoreError),  # lock wait timeout
        (1062, TransientStoreError),  # duplicate key: a lost race
        (1290, StoreReadOnly),  # read-only (--read-only): a StoreUnavailable
        (1792, StoreReadOnly),  # read-only transaction (failed over): a StoreUnavailable
        (2006, StoreUnavailable),  # server has gone away
        (2013, StoreUnavailable),  # lost connection during query
        (3024, StoreUnavailable),  # query execution was interrupted (timeout)
        (1969, StoreUnavailable),  # MariaDB statement timeout
        (1146, StoreUnavailable),  # no such table: refuses every record alike, so it pauses
        (1054, StoreUnavailable),  # unknown column: the same
    ],
)
def test_mysql_errors_that_may_pass_later_stay_retriable(code: int, kind: type) -> None:
    """Contention, connection loss, read-only, timeouts and schema errors keep retrying."""
    error = translate(MySQLdb.OperationalError(code, "message"))
    assert type(error) is kind
    assert error.retriable


def test_no_retriable_code_is_listed_as_deterministic() -> None:
    """The deterministic list leaves out every code the consumer must retry."""
    assert not DETERMINISTIC_CODES & {1213, 1205, 1062, 1290, 1792, 2006, 2013, 3024, 1969}


@pytest.fixture
def connections(tmp_path: Path) -> ThreadConnections:
    # Construction opens nothing: only the error mapping is used.
    return ThreadConnections(tmp_path / "never-opened.sqlite", StoreUnavailable)


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.IntegrityError("CHECK constraint failed: memo <> 'poison'"),
        sqlite3.IntegrityError("NOT NULL constraint failed: journal.memo"),
        sqlite3.IntegrityError("FOREIGN KEY constraint failed"),
        sqlite3.IntegrityError("refused by a trigger"),  # RAISE(ABORT, ...)
        sqlite3.DataError("string or blob too big"),
    ],
    ids=["check", "not-null", "foreign-key", "trigger", "too-big"],
)
def test_sqlite_refused_values_are_store_rejected(
    connections: ThreadConnections, error: sqlite3.Error
) -> None:
    """Constraints other than uniqueness, and oversized values: not retriable."""
    mapped = connections._translate(error)
    assert isinstance(mapped, StoreRejected)
    assert not mapped.retriable


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            sqlite3.IntegrityError("UNIQUE constraint failed: journal.request_id"),
            TransientStoreError,
        ),
        (sqlite3.IntegrityError("PRIMARY KEY must be unique"), TransientStoreError),
        (sqlite3.OperationalError("database is locked"), StoreUnavailable),
        (sqlite3.OperationalError("disk I/O error"), StoreUnavailable),
    ],
    ids=["unique", "primary-key", "locked", "io"],
)
def test_sqlite_errors_that_may_pass_later_stay_retriable(
    connections: ThreadConnections, error: sqlite3.Error, kind: type
) -> None:
    """A lost insert race and an unusable file keep their retriable errors."""
    mapped = connections._translate(error)
    assert type(mapped) is kind
    assert mapped.retriable
