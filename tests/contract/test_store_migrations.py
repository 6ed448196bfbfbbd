"""Versioned schema migrations, run against every SQL store backend."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from store_contract_support import BlankDatabase

from ledgerd.cli import main
from ledgerd.errors import SchemaTooNew
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.schema import LATEST_VERSION, MIGRATIONS, Migration
from ledgerd.store.sql.sqlite_dialect import SqliteDialect


def raw(store: SqlStore, sql: str) -> list[tuple[object, ...]]:
    with store.dialect.autocommit() as session:
        return [tuple(row) for row in session.query(sql)]


def test_a_new_database_gets_every_step_recorded(blank_db: BlankDatabase) -> None:
    """migrate on an empty database applies each step once and records the latest version."""
    store = blank_db.open()
    assert store.schema_version() == 0
    change = store.apply_migrations()
    assert (change.before, change.after) == (0, LATEST_VERSION)
    assert store.schema_version() == LATEST_VERSION
    assert sorted(raw(store, "SELECT version FROM schema_version")) == [
        (m.version,) for m in MIGRATIONS
    ]
    again = store.apply_migrations()
    assert (again.before, again.after) == (LATEST_VERSION, LATEST_VERSION)


def test_both_engines_name_the_partition_column_partition_id(blank_db: BlankDatabase) -> None:
    """partition_offsets has the same column names on every engine."""
    store = blank_db.open()
    store.migrate()
    store.claim_partition("t", 4)
    assert raw(store, "SELECT topic, partition_id, next_offset, epoch FROM partition_offsets") == [
        ("t", 4, 0, 1)
    ]


def test_a_database_made_by_the_previous_code_upgrades_in_place(blank_db: BlankDatabase) -> None:
    """A database at version 1 (the layout and bookkeeping the store wrote before
    numbered steps) keeps its rows and reaches the latest version."""
    store = blank_db.open()
    assert store.apply_migrations(MIGRATIONS[:1]).after == 1
    with store.dialect.autocommit() as session:
        # Positional: SQLite's version 1 still calls the column "partition".
        session.execute("INSERT INTO partition_offsets VALUES ('t', 3, 42, 7)")
    if isinstance(store.dialect, SqliteDialect):
        columns = [row[1] for row in raw(store, "PRAGMA table_info(partition_offsets)")]
        assert columns == ["topic", "partition", "next_offset", "epoch"]
    change = store.apply_migrations()
    assert (change.before, change.after) == (1, LATEST_VERSION)
    assert store.get_positions("t") == {3: 42}
    assert store.claim_partition("t", 3).epoch == 8


def test_a_database_without_a_version_table_is_adopted(blank_db: BlankDatabase) -> None:
    """Tables made before any version was recorded are kept; every step is recorded."""
    store = blank_db.open()
    with store.dialect.exclusive() as session:
        for statement in MIGRATIONS[0].statements(store.dialect.name):
            session.execute(statement)
        session.execute("INSERT INTO partition_offsets VALUES ('t', 0, 5, 2)")
    assert store.schema_version() == 0
    store.migrate()
    assert store.schema_version() == LATEST_VERSION
    assert store.get_positions("t") == {0: 5}


def test_a_schema_newer_than_the_code_is_refused(blank_db: BlankDatabase) -> None:
    """A database migrated by newer code makes migrate fail, naming both versions,
    not retriable, and changing nothing."""
    future = LATEST_VERSION + 1
    newer = blank_db.open()
    newer.apply_migrations(
        [*MIGRATIONS, Migration(future, "a newer step", ("CREATE TABLE later (x INTEGER)",))]
    )
    store = blank_db.open()
    with pytest.raises(SchemaTooNew) as refused:
        store.migrate()
    assert (refused.value.found, refused.value.known) == (future, LATEST_VERSION)
    assert str(future) in str(refused.value) and str(LATEST_VERSION) in str(refused.value)
    assert not refused.value.retriable
    assert store.schema_version() == future


def test_processes_migrating_at_once_apply_each_step_once(blank_db: BlankDatabase) -> None:
    """Stores on separate connections migrating together take turns: one applies,
    the others find the schema current."""
    stores = [blank_db.open() for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: SqlStore) -> None:
        start.wait()
        try:
            store.migrate()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(raw(stores[0], "SELECT version FROM schema_version")) == [
        (m.version,) for m in MIGRATIONS
    ]


def test_migrate_command_prints_the_version_before_and_after(
    blank_db: BlankDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`ledgerd migrate` applies what is missing and says which versions it went between."""
    store = blank_db.open()
    store.apply_migrations(MIGRATIONS[:1])
    monkeypatch.setenv("LEDGERD_STORE_URL", blank_db.url)
    monkeypatch.setenv("LEDGERD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGERD_LOG_URL", "embedded:")  # its topics: in tmp_path, not Kafka
    assert main(["migrate"]) == 0
    assert f"schema version 1 -> {LATEST_VERSION}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert f"schema version {LATEST_VERSION} -> {LATEST_VERSION}" in capsys.readouterr().out


def outbox_indexes(store: SqlStore) -> set[str]:
    if isinstance(store.dialect, SqliteDialect):
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'change_requests' AND name NOT LIKE 'sqlite_%'"
        )
    else:
        sql = (
            "SELECT DISTINCT index_name FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND table_name = 'change_requests'"
            " AND index_name <> 'PRIMARY'"
        )
    return {str(row[0]) for row in raw(store, sql)}


def test_the_outbox_loses_its_status_index_at_version_12(blank_db: BlankDatabase) -> None:
    """The outbox holds only requests in flight: its status index cost each change an
    entry written and one purged, and goes at version 12, on both engines."""
    store = blank_db.open()
    store.apply_migrations([m for m in MIGRATIONS if m.version <= 11])
    assert outbox_indexes(store) == {"change_requests_status"}
    assert store.apply_migrations().after == LATEST_VERSION >= 12
    assert outbox_indexes(store) == set()
