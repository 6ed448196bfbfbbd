"""A MySQL server that refuses writes, simulated at the adapter boundary (driver errors
and server variables from a fake connection): the store says read-only, not "down", and
the refusal stays retriable (a read-only primary must never dead-letter a record)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import MySQLdb
import pytest

from ledgerd.errors import StoreReadOnly, StoreUnavailable
from ledgerd.store.pool import ConnectionPool
from ledgerd.store.sql.mysql_dialect import MysqlDialect, translate

READ_ONLY_MESSAGE = "The MariaDB server is running with the --read-only option"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1290, READ_ONLY_MESSAGE),
        (1792, "Cannot execute statement in a READ ONLY transaction"),
        (1036, "Table 'journal' is read only"),
        (1142, "INSERT command denied to user 'ledgerd'@'%' for table 'journal'"),
    ],
)
def test_write_refusals_translate_to_a_retriable_read_only_store(code: int, message: str) -> None:
    """Each error meaning "the server refuses writes" is StoreReadOnly, retriable."""
    error = translate(MySQLdb.OperationalError(code, message))
    assert isinstance(error, StoreReadOnly)
    assert error.retriable
    assert str(code) in str(error)


def test_other_errors_are_not_read_only() -> None:
    """A lost connection stays StoreUnavailable, not read-only."""
    error = translate(MySQLdb.OperationalError(2013, "Lost connection to server during query"))
    assert isinstance(error, StoreUnavailable)
    assert not isinstance(error, StoreReadOnly)


class FakeCursor:
    def __init__(self, variables: tuple[object, object], refuse: int | None) -> None:
        self._variables = variables
        self._refuse = refuse
        self.statements: list[str] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        self.statements.append(sql)
        if sql.startswith("UPDATE") and self._refuse is not None:
            raise MySQLdb.OperationalError(self._refuse, READ_ONLY_MESSAGE)

    def fetchall(self) -> list[tuple[object, object]]:
        return [self._variables]

    @property
    def rowcount(self) -> int:
        return 0


class FakeConnection:
    def __init__(self, cursor: FakeCursor) -> None:
        self._cursor = cursor

    def cursor(self) -> FakeCursor:
        return self._cursor


def dialect_over(cursor: FakeCursor) -> MysqlDialect:
    dialect = MysqlDialect("mysql://u:p@127.0.0.1:1/db")
    pool: ConnectionPool[Any] = ConnectionPool(
        lambda: FakeConnection(cursor), lambda _: None, size=1, queue_limit=1, wait_timeout_s=1
    )
    dialect._pool = pool  # the driver's side of the boundary, faked
    return dialect


@pytest.mark.parametrize(
    ("variables", "named"),
    [((1, 0), "read_only"), ((0, 1), "innodb_read_only"), (("ON", "OFF"), "read_only")],
)
def test_ping_names_a_read_only_server_from_its_variables(
    variables: tuple[object, object], named: str
) -> None:
    """@@read_only or @@innodb_read_only on: StoreReadOnly naming the variable, no write tried."""
    cursor = FakeCursor(variables, refuse=None)
    with pytest.raises(StoreReadOnly, match=f"@@{named} is ON"):
        dialect_over(cursor).ping()
    assert not any(sql.startswith("UPDATE") for sql in cursor.statements)


def test_ping_reports_a_refused_probe_write_as_read_only() -> None:
    """Variables off but the probe write refused (1290): StoreReadOnly."""
    with pytest.raises(StoreReadOnly, match="1290"):
        dialect_over(FakeCursor((0, 0), refuse=1290)).ping()


def test_ping_of_a_writable_server_passes() -> None:
    """Variables off and the probe write taken: no error."""
    cursor = FakeCursor((0, 0), refuse=None)
    dialect_over(cursor).ping()
    assert any(sql.startswith("UPDATE") for sql in cursor.statements)
