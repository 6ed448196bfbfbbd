"""Lock state on every store backend: an account's lock, each journal entry's lock after
it, and a lock change's actor from the outbox to the journal (schema 10)."""

from __future__ import annotations

from store_contract_support import BlankDatabase

from ledgerd.consumer.columns import journal_entry
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import (
    LEGS_PER_MESSAGE,
    Account,
    AccountLock,
    Balance,
    ChangeRequest,
    ChangeType,
    JournalEntry,
)
from ledgerd.store.base import BatchCommit, DecidedRows, JournalRow, PartitionClaim, Store
from ledgerd.store.sql.schema import LATEST_VERSION, MIGRATIONS

LOCK_STEP = 10

USER = 1  # partition 0 of the test stores' partitions
LOCKED_USER = 4  # partition 1


def test_a_lock_and_its_actor_survive_a_commit_and_read_back_everywhere(store: Store) -> None:
    """A lock change committed by the general path: the balance keeps its lock (load,
    GetBalance), the journal entry its actor, memo and lock after (by account, by id)."""
    lock = ChangeRequest("l1", USER, "USD", ChangeType.LOCK_FULL, 0, "court order", actor="ops-key")
    store.accept_requests(["l1"], lambda _: [lock], 1000)
    (unsent,) = store.find_unsent(created_before_ms=2000, limit=10)
    assert unsent.stored.request == lock  # the sweep republishes it with its actor
    claim = store.claim_partition("t", 0)
    locked = Balance(USER, "USD", 5 * SCALE, 0, 2, AccountLock.FULL)
    entry = JournalEntry(
        "l1", USER, "USD", ChangeType.LOCK_FULL, 0, 5 * SCALE, 0, 2, 5000, "court order",
        partition=0, event_seq=3 * LEGS_PER_MESSAGE + 1, actor="ops-key",
        lock_after=AccountLock.FULL,
    )  # fmt: skip
    store.commit_batch(BatchCommit([PartitionClaim("t", 0, claim.epoch, 4)], [entry], [], 5000))
    assert store.load_balances([Account(USER, "USD")]) == {Account(USER, "USD"): locked}
    assert store.get_balances(USER, "USD") == [locked]
    assert store.get_journal(USER, "USD", 0, 10) == [entry]
    assert store.get_journal_entries(["l1"]) == {"l1": entry}
    assert list(store.scan_events(0, 0, 10)) == [entry]


def test_an_unlock_clears_the_stored_lock(store: Store) -> None:
    """The balance's lock is its newest entry's lock after: NONE replaces FULL."""
    claim = store.claim_partition("t", 0)
    changes = (
        (1, ChangeType.LOCK_FULL, AccountLock.FULL),
        (2, ChangeType.UNLOCK, AccountLock.NONE),
    )
    for version, change, lock in changes:
        entry = JournalEntry(
            f"l{version}", USER, "USD", change, 0, 0, 0, version, 5000, lock_after=lock
        )
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 0, claim.epoch, version)],
                [entry], [], 5000,
            )
        )  # fmt: skip
        assert store.get_balances(USER, "USD") == [Balance(USER, "USD", 0, 0, version, lock)]


def test_client_rows_of_a_locked_account_keep_their_lock_after(store: Store) -> None:
    """The column path's rows (a deposit to a debit-locked account) store the lock after."""
    claim = store.claim_partition("t", 1)
    rows: list[JournalRow] = [
        (
            "d1", LOCKED_USER, "USD", ChangeType.DEPOSIT, SCALE, SCALE, 0, 4, 5000, "", "", 0,
            1, 7 * LEGS_PER_MESSAGE + 1, "", int(AccountLock.DEBITS),
        )
    ]  # fmt: skip
    journal = [journal_entry(row) for row in rows]
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 1, claim.epoch, 8)],
            journal, [], 5000, rows=DecidedRows(rows, []),
        )
    )  # fmt: skip
    (stored,) = store.get_journal(LOCKED_USER, "USD", 0, 10)
    assert stored.lock_after == AccountLock.DEBITS
    assert stored.balance_after.lock == AccountLock.DEBITS


def test_accounts_of_an_older_schema_read_unlocked_after_migration_10(
    blank_db: BlankDatabase,
) -> None:
    """A balance stored before step 10 (with its newest journal entry, as the consumer
    wrote them) reads as unlocked with its amounts after it."""
    store = blank_db.open()
    store.apply_migrations([m for m in MIGRATIONS if m.version < LOCK_STEP])
    user = store.dialect.user_offset
    with store.dialect.autocommit() as session:
        session.execute(
            "INSERT INTO journal (request_id, user_id, currency, type, amount,"
            " available_after, frozen_after, version, applied_at_ms, memo)"
            " VALUES ('d3', ?, 'USD', 1, '1', '2', '0', 3, 5000, '')",
            [USER - user],
        )
        session.execute(
            "INSERT INTO balances (user_id, currency, available, frozen, version)"
            " VALUES (?, 'USD', '2', '0', 3)",
            [USER - user],
        )
    assert store.apply_migrations().after == LATEST_VERSION
    assert store.get_balances(USER, "USD") == [Balance(USER, "USD", 2 * SCALE, 0, 3)]
