"""Schema 8 (the journal clustered by an append-ordered entry id) on every SQL backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_contract_support import BlankDatabase, blank_database

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeType, JournalEntry
from ledgerd.errors import TransientStoreError
from ledgerd.store.base import BatchCommit, PartitionClaim
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.rows import JOURNAL_COLUMNS
from ledgerd.store.sql.schema import LATEST_VERSION, MIGRATIONS
from ledgerd.store.sql.statements import journal_values

TOPIC = "balance-changes"
JOURNAL_STEP = 8


def entry(request_id: str, user: int, version: int, seq: int) -> JournalEntry:
    return JournalEntry(
        request_id, user, "USD", ChangeType.DEPOSIT, SCALE, version * SCALE, 0, version,
        1000 + seq, partition=0, event_seq=seq,
    )  # fmt: skip


def commit(store: SqlStore, next_offset: int, journal: list[JournalEntry]) -> None:
    epoch = store.claim_partition(TOPIC, 0).epoch
    store.commit_batch(
        BatchCommit(
            [PartitionClaim(TOPIC, 0, epoch, next_offset)],
            journal,
            [],
            5000,
        )
    )


def journal_at_schema_7(store: SqlStore, journal: list[JournalEntry]) -> None:
    """Rows as a schema 7 store wrote them (without the columns of later steps)."""
    columns = JOURNAL_COLUMNS.removesuffix(", lock_after")
    marks = ",".join("?" * (columns.count(",") + 1))
    with store.dialect.autocommit() as session:
        for e in journal:
            values = journal_values(e, store.dialect)[:-1]  # all but lock_after
            session.execute(f"INSERT INTO journal ({columns}) VALUES ({marks})", values)


def entry_ids(store: SqlStore) -> dict[str, int]:
    with store.dialect.autocommit() as session:
        found = session.query("SELECT request_id, entry_id FROM journal")
    return {str(rid): int(entry_id) for rid, entry_id in found}


def test_a_schema_7_journal_keeps_every_row_and_read(blank_db: BlankDatabase) -> None:
    """Rows journaled before step 8 read back the same by account, request id, event
    position and audit scan after it; rows journaled after it get larger entry ids, and
    both uniqueness rules still hold."""
    store = blank_db.open()
    assert MIGRATIONS[JOURNAL_STEP - 1].version == JOURNAL_STEP
    store.apply_migrations(MIGRATIONS[: JOURNAL_STEP - 1])
    old = [entry("a1", 1, 1, 1), entry("b1", 2, 1, 2), entry("a2", 1, 2, 3)]
    journal_at_schema_7(store, old)
    assert store.apply_migrations().after == LATEST_VERSION
    assert store.get_journal(1, "USD", 0, 10) == [old[0], old[2]]
    assert store.get_journal_entries(["a1", "b1", "zz"]) == {"a1": old[0], "b1": old[1]}
    assert store.scan_events(0, 0, 10) == old
    assert store.scan_journal(None, 10) == [old[0], old[2], old[1]]
    new = entry("b2", 2, 2, 4)
    commit(store, 4, [new])
    ids = entry_ids(store)
    assert ids["b2"] > max(ids[e.request_id] for e in old)
    assert store.get_journal(2, "USD", 1, 10) == [new]
    with pytest.raises(TransientStoreError):  # an account's version is journaled once
        commit(store, 5, [entry("c1", 2, 2, 5)])
    with pytest.raises(TransientStoreError):  # and so is a request id
        commit(store, 5, [entry("a1", 2, 3, 5)])
    assert store.get_positions(TOPIC) == {0: 4}


def test_the_mariadb_journal_step_run_again_after_a_crash_is_harmless(tmp_path: Path) -> None:
    """MariaDB commits DDL itself, so a crash can leave step 8 applied but unrecorded: its
    statement run a second time keeps the rows, their entry ids and the keys."""
    with blank_database("mysql", tmp_path) as database:
        store = database.open()
        store.migrate()
        commit(store, 2, [entry("a1", 1, 1, 1), entry("a2", 1, 2, 2)])
        before = entry_ids(store)
        with store.dialect.exclusive() as session:
            for statement in MIGRATIONS[JOURNAL_STEP - 1].statements("mysql"):
                session.execute(statement)
        assert entry_ids(store) == before
        commit(store, 3, [entry("a3", 1, 3, 3)])
        assert entry_ids(store)["a3"] > max(before.values())
        with pytest.raises(TransientStoreError):
            commit(store, 4, [entry("a3", 1, 4, 4)])
