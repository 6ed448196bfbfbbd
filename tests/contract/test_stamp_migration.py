"""Schema 13 (stamps that never fall, the journal without journal_account_time) on every
SQL backend."""

from __future__ import annotations

from store_contract_support import BlankDatabase

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeType, JournalEntry
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.rows import JOURNAL_COLUMNS
from ledgerd.store.sql.schema import LATEST_VERSION, MIGRATIONS
from ledgerd.store.sql.statements import journal_values

STAMP_STEP = 13


def entries(user: int, stamps: list[int]) -> list[JournalEntry]:
    return [entry(user, n + 1, at_ms) for n, at_ms in enumerate(stamps)]


def entry(user: int, version: int, at_ms: int) -> JournalEntry:
    return JournalEntry(
        f"{user}-{version}", user, "USD", ChangeType.DEPOSIT, SCALE, version * SCALE, 0,
        version, at_ms, partition=0, event_seq=version,
    )  # fmt: skip


def journal_at_schema_12(store: SqlStore, journal: list[JournalEntry]) -> None:
    """Rows and a position as a schema 12 store wrote them (no recorded stamp yet)."""
    marks = ",".join("?" * (JOURNAL_COLUMNS.count(",") + 1))
    with store.dialect.autocommit() as session:
        for e in journal:
            session.execute(
                f"INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES ({marks})",
                journal_values(e, store.dialect),
            )
        session.execute(
            "INSERT INTO partition_offsets (topic, partition_id, next_offset, epoch)"
            " VALUES ('t', 0, 9, 1)"
        )


def test_older_entries_take_the_largest_stamp_up_to_their_version(
    blank_db: BlankDatabase,
) -> None:
    """A failover to a slower clock stamped user 1's version 3 (4000) before version 2's
    5000: schema 13 stamps it 5000, its moment already, so as-of answers stay; user 2's
    rising stamps stay as they were; the newest stamp is recorded for the next claim."""
    store = blank_db.open()
    assert MIGRATIONS[STAMP_STEP - 1].version == STAMP_STEP
    store.apply_migrations(MIGRATIONS[: STAMP_STEP - 1])
    journal_at_schema_12(store, entries(1, [1000, 5000, 4000, 6000]) + entries(2, [500, 7000]))
    assert store.apply_migrations().after == LATEST_VERSION
    assert [e.applied_at_ms for e in store.get_journal(1, "USD", 0, 10)] == [
        1000, 5000, 5000, 6000,
    ]  # fmt: skip
    assert [e.applied_at_ms for e in store.get_journal(2, "USD", 0, 10)] == [500, 7000]
    moments = {4500: 1, 5000: 1, 5001: 3, 6001: 4}
    assert {m: store.journal_version_before(1, "USD", m) for m in moments} == moments
    assert store.claim_partition("t", 0).stamped_at_ms == 7000
