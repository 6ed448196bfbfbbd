"""An account's balance is its newest journal entry (schema 14): no balance row is kept,
so the two can never disagree, and a database from before reads the same after it."""

from __future__ import annotations

import pytest
from store_contract_support import BlankDatabase

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, AccountLock, Balance, ChangeType, JournalEntry
from ledgerd.store.base import BatchCommit, PartitionClaim, Store
from ledgerd.store.scan import iter_balances
from ledgerd.store.sql.schema import LATEST_VERSION, MIGRATIONS

BALANCES_FROM_JOURNAL_STEP = 14
USER = 1  # partition 0 of the test stores' partitions


def deposit(version: int, currency: str, available: int) -> JournalEntry:
    return JournalEntry(
        f"d{currency}{version}", USER, currency, ChangeType.DEPOSIT, SCALE, available, 0,
        version, 5000 + version,
    )  # fmt: skip


def test_the_newest_of_many_entries_in_each_currency_is_the_balance(store: Store) -> None:
    """Hundreds of versions in two currencies, over several batches: each read gives
    each account's newest entry, amounts, version and lock, and no older one."""
    claim = store.claim_partition("t", 0)
    for batch in range(3):
        journal = [
            deposit(version, currency, version * SCALE)
            for currency in ("USD", "EUR")
            for version in range(batch * 100 + 1, batch * 100 + 101)
        ]
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 0, claim.epoch, batch + 1)],
                journal,
                [],
                5000,
            )
        )
    lock = JournalEntry(
        "l1", USER, "USD", ChangeType.LOCK_DEBITS, 0, 300 * SCALE, 0, 301, 9000,
        lock_after=AccountLock.DEBITS,
    )  # fmt: skip
    store.commit_batch(BatchCommit([PartitionClaim("t", 0, claim.epoch, 4)], [lock], [], 9000))
    usd = Balance(USER, "USD", 300 * SCALE, 0, 301, AccountLock.DEBITS)
    eur = Balance(USER, "EUR", 300 * SCALE, 0, 300)
    assert store.get_balances(USER, None) == [eur, usd]
    assert store.get_balances(USER, "USD") == [usd]
    assert store.load_balances([Account(USER, "USD"), Account(USER, "EUR")]) == {
        usd.account: usd,
        eur.account: eur,
    }
    assert list(iter_balances(store, page_rows=1)) == [eur, usd]


def test_step_14_reads_the_same_balances_from_the_journal_and_drops_the_rows(
    blank_db: BlankDatabase,
) -> None:
    """Balance rows written with their entries before step 14 (as every consumer wrote
    them) read the same after it, now from the journal, and their table is gone."""
    store = blank_db.open()
    store.apply_migrations([m for m in MIGRATIONS if m.version < BALANCES_FROM_JOURNAL_STEP])
    off = store.dialect.user_offset
    with store.dialect.autocommit() as session:
        for version, available in ((1, "5"), (2, "3.25")):
            session.execute(
                "INSERT INTO journal (request_id, user_id, currency, type, amount,"
                " available_after, frozen_after, version, applied_at_ms, memo, lock_after)"
                " VALUES (?, ?, 'USD', 1, '1', ?, '0.5', ?, 5000, '', ?)",
                [f"d{version}", USER - off, available, version, version - 1],
            )
        session.execute(
            "INSERT INTO balances (user_id, currency, available, frozen, version, lock_scope)"
            " VALUES (?, 'USD', '3.25', '0.5', 2, 1)",
            [USER - off],
        )
    assert store.apply_migrations().after == LATEST_VERSION
    newest = Balance(USER, "USD", 3 * SCALE + SCALE // 4, SCALE // 2, 2, AccountLock.DEBITS)
    assert store.get_balances(USER, None) == [newest]
    assert store.load_balances([Account(USER, "USD")]) == {newest.account: newest}
    with store.dialect.autocommit() as session, pytest.raises(Exception, match="balances"):
        session.query("SELECT COUNT(*) FROM balances")
