"""MariaDB round trips per transaction: START TRANSACTION travels with the first
statement, the acceptor's insert, outcome check and group row go in one multi-statement
call, and the consumer's writes carry the COMMIT (each round trip costs about 100 µs of
client CPU plus the server's per-command work)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from harness import drop_database, migrated_database_url
from MySQLdb.cursors import Cursor

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType, JournalEntry
from ledgerd.errors import Fenced, StoreRejected
from ledgerd.store.base import BatchCommit, PartitionClaim
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.mysql_dialect import MysqlDialect


class _CountingCursor(Cursor):  # type: ignore[misc]  # mysqlclient has no type hints
    sent: list[str]

    def _query(self, q: bytes) -> Any:
        self.sent.append(q.decode()[:60])
        return super()._query(q)


class CountingDialect(MysqlDialect):
    """Lists every command its connections send: statements (one entry per call, however
    many statements it carries), COMMIT and ROLLBACK."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[str] = []

    def _connect(self, database: str | None = None) -> Any:
        connection = super()._connect(database)
        sent = self.sent
        counting = type("Counting", (_CountingCursor,), {"sent": sent})
        connection.cursorclass = counting
        commit, rollback = connection.commit, connection.rollback

        def counted_commit() -> None:
            sent.append("<commit>")
            commit()

        def counted_rollback() -> None:
            sent.append("<rollback>")
            rollback()

        connection.commit, connection.rollback = counted_commit, counted_rollback
        return connection


@pytest.fixture
def counted() -> Iterator[tuple[SqlStore, CountingDialect]]:
    url = migrated_database_url()
    dialect = CountingDialect(url)
    store = SqlStore(dialect)
    try:
        store.migrate()
        yield store, dialect
    finally:
        store.close()
        drop_database(url)


def change(n: int, memo: str = "") -> ChangeRequest:
    return ChangeRequest(f"r{n}", n, "USD", ChangeType.DEPOSIT, SCALE, memo)


def test_accepting_new_ids_takes_two_round_trips(
    counted: tuple[SqlStore, CountingDialect],
) -> None:
    """Insert, outcome check and the group's row in one call, then COMMIT (it took five:
    START TRANSACTION, the insert, the check, the group, COMMIT)."""
    store, dialect = counted
    dialect.sent.clear()
    new = [change(1), change(2)]
    assert store.accept_requests(["r1", "r2"], lambda stored: new, 1000, "g-1") == {}
    assert len(dialect.sent) == 2, dialect.sent
    assert dialect.sent[0].startswith("START TRANSACTION;INSERT IGNORE INTO change_requests")
    assert dialect.sent[1] == "<commit>"
    assert set(store.get_requests(["r1", "r2"])) == {"r1", "r2"}


def test_a_consumer_commit_takes_two_round_trips(
    counted: tuple[SqlStore, CountingDialect],
) -> None:
    """The offset compare-and-set (with START TRANSACTION), then every write with COMMIT
    (it took one per statement, plus START TRANSACTION and COMMIT)."""
    store, dialect = counted
    claim = store.claim_partition("t", 0)
    dialect.sent.clear()
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 3)],
            [JournalEntry("r1", 1, "USD", ChangeType.DEPOSIT, SCALE, SCALE, 0, 1, 5000, "")],
            [],
            5000,
        )
    )
    assert len(dialect.sent) == 2, dialect.sent
    assert dialect.sent[0].startswith("START TRANSACTION;UPDATE partition_offsets")
    assert dialect.sent[1].startswith("INSERT INTO journal")  # no balance row: see below
    assert store.get_positions("t") == {0: 3}
    assert [b.version for b in store.get_balances(1, "USD")] == [1]


def test_a_fenced_commit_sends_no_write(counted: tuple[SqlStore, CountingDialect]) -> None:
    """A stale epoch stops the commit after its compare-and-set: no balance or journal
    statement reaches the server, and the transaction rolls back."""
    store, dialect = counted
    old = store.claim_partition("t", 0)
    store.claim_partition("t", 0)
    dialect.sent.clear()
    with pytest.raises(Fenced):
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 0, old.epoch, 3)],
                [],
                [],
                5000,
            )
        )
    assert len(dialect.sent) == 2, dialect.sent
    assert dialect.sent[0].startswith("START TRANSACTION;UPDATE partition_offsets")
    assert dialect.sent[1] == "<rollback>"
    assert store.get_balances(1, None) == []


def test_a_value_the_insert_altered_fails_the_acceptance_and_stores_nothing(
    counted: tuple[SqlStore, CountingDialect],
) -> None:
    """A memo over its column's 256 characters: INSERT IGNORE would cut it with a warning;
    read from that statement's own result in the multi-statement call, it fails the
    acceptance as StoreRejected (not retriable); neither the row nor the group stays."""
    store, _ = counted
    too_long = change(1, memo="x" * 300)
    with pytest.raises(StoreRejected) as refused:
        store.accept_requests(["r1"], lambda stored: [too_long], 1000, "g-1")
    assert not refused.value.retriable
    assert store.get_requests(["r1"]) == {}
    with store.dialect.autocommit() as session:
        assert session.query("SELECT COUNT(*) FROM publish_groups")[0][0] == 0
