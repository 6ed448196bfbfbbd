"""The audit's money and transfer checks on every store: transfers between users of two
partitions (two shards on the sharded store), in flight, stuck, complete, returned; and on
shards audited one snapshot after the other, a transfer whose legs straddle them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from store_contract_support import sharded_mysql_store
from test_sharded_store import USER_P0, USER_P1

from ledgerd.audit import AuditReport, audit, audit_shards
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import (
    Account,
    AccountLock,
    Balance,
    ChangeRequest,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
)
from ledgerd.domain.rules import Applied, apply_change
from ledgerd.store.base import BatchCommit, Store
from ledgerd.store.sharded import ShardedStore

SOURCE, DESTINATION = USER_P0, USER_P1  # in shards 0 and 1 of the sharded store
APPLIED_AT_MS = 1_000_000
SOON_MS = APPLIED_AT_MS + 1000
STUCK_S = 60.0


class Consumer:
    """Applies changes as the consumer does, committing balances and journal together
    (each user's batch on its own, as the partitions of two users are)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.balances: dict[Account, Balance] = {}

    def apply(self, *requests: ChangeRequest, rejected: ChangeRequest | None = None) -> None:
        entries = [self._entry(r) for r in requests]
        rejections = [Rejection(rejected, RejectReason.AMOUNT_OVERFLOW)] if rejected else []
        self.store.commit_batch(
            BatchCommit(
                [], entries, rejections,
                APPLIED_AT_MS,
            )
        )  # fmt: skip

    def _entry(self, request: ChangeRequest) -> JournalEntry:
        account = request.account
        before = self.balances.get(account) or Balance(request.user_id, request.currency)
        result = apply_change(before, request)
        assert isinstance(result, Applied), result
        after = self.balances[account] = result.balance
        return JournalEntry(
            request.request_id, request.user_id, request.currency, request.type,
            request.amount, after.available, after.frozen, after.version, APPLIED_AT_MS,
            request.memo, request.transfer_id, request.counterparty_user_id,
            lock_after=after.lock,
        )  # fmt: skip


def deposit(request_id: str, user: int, units: int) -> ChangeRequest:
    return ChangeRequest(request_id, user, "USD", ChangeType.DEPOSIT, units * SCALE)


def transfer(transfer_id: str, units: int, from_frozen: bool = False) -> ChangeRequest:
    """The debit of a transfer from SOURCE to DESTINATION."""
    kind = ChangeType.TRANSFER_OUT_FROZEN if from_frozen else ChangeType.TRANSFER_OUT
    return ChangeRequest(
        transfer_id, SOURCE, "USD", kind, units * SCALE, "", transfer_id, DESTINATION
    )


@pytest.fixture
def consumer(store: Store) -> Consumer:
    made = Consumer(store)
    made.apply(deposit("d1", SOURCE, 100))
    return made


def audited(store: Store, now_ms: int = SOON_MS) -> AuditReport:
    return audit(store, max_in_flight_s=STUCK_S, now_ms=now_ms)


def test_transfers_complete_from_available_and_from_frozen(consumer: Consumer) -> None:
    """Both kinds of debit credited; a settlement spends frozen money: money adds up."""
    frozen = ChangeRequest("f1", SOURCE, "USD", ChangeType.FREEZE, 30 * SCALE)
    spend = ChangeRequest("s1", SOURCE, "USD", ChangeType.SPEND_FROZEN, 5 * SCALE)
    consumer.apply(frozen, spend)
    for debit in (transfer("T1", 10), transfer("T2", 20, from_frozen=True)):
        consumer.apply(debit)
        consumer.apply(debit.credit())
    report = audited(consumer.store)
    assert report.ok, report.problems
    assert report.transfers is not None and report.money is not None
    assert (report.transfers.transfers, report.transfers.in_flight) == (2, 0)
    totals = report.money.currencies["USD"]
    assert (totals.balances, totals.deposits, totals.spent) == (95 * SCALE, 100 * SCALE, 5 * SCALE)


def test_a_debit_not_yet_credited_is_in_flight(consumer: Consumer) -> None:
    consumer.apply(transfer("T", 10))
    report = audited(consumer.store)
    assert report.ok, report.problems
    assert report.transfers is not None
    assert (report.transfers.in_flight, report.transfers.in_flight_amounts) == (
        1, {"USD": 10 * SCALE}
    )  # fmt: skip
    lines = report.summary().splitlines()
    assert ["transfers in flight", "1"] in [line.rsplit(maxsplit=1) for line in lines]
    assert ["in flight USD", "10"] in [line.strip().rsplit(maxsplit=1) for line in lines]


def test_a_transfer_in_flight_too_long_is_a_finding(consumer: Consumer) -> None:
    consumer.apply(transfer("T", 10))
    report = audited(consumer.store, now_ms=APPLIED_AT_MS + int(STUCK_S * 1000) + 1)
    assert report.problems == [
        f"transfer T: in flight for 60 s (10 USD from user {SOURCE} to user {DESTINATION}:"
        " debited, neither credited nor returned)"
    ]


def test_a_refused_credit_returned_is_complete(consumer: Consumer) -> None:
    """The credit rejected (AMOUNT_OVERFLOW) in the destination's batch, the return
    applied in the source's."""
    debit = transfer("T", 10)
    consumer.apply(debit)
    consumer.apply(rejected=debit.credit())
    report = audited(consumer.store)
    assert report.ok and report.transfers is not None
    assert report.transfers.in_flight == 1  # on its way back
    consumer.apply(debit.credit().returned())
    report = audited(consumer.store)
    assert report.ok, report.problems
    assert report.transfers is not None and report.transfers.in_flight == 0


def test_a_credit_without_its_debit_is_a_finding(consumer: Consumer) -> None:
    """Money from nowhere: the transfer check names it, and the money in flight by the
    journal's sums (less than nothing) disagrees with the transfers'."""
    consumer.apply(transfer("T", 10).credit())
    report = audited(consumer.store)
    assert report.problems == [
        "transfer T: a credit without its debit",
        "USD: -10 in flight by the journal (sent 0 - received 10 - returned 0) but 0 by the"
        " transfers' legs",
    ]


@pytest.fixture
def sharded() -> Iterator[ShardedStore]:
    with sharded_mysql_store() as store:
        yield store


def in_another_thread(work: Callable[[], None]) -> None:
    """Outside the audit's snapshot, which is the calling thread's."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def audit_with_commit_between_shards(
    store: ShardedStore, commit: Callable[[], None]
) -> AuditReport:
    """Audit each shard in its own snapshot, running ``commit`` once shard 0 is scanned."""
    scanned: list[str] = []

    def progress(what: str, _: int) -> None:
        scanned.append(what)
        if scanned.count("outbox rows") == 1 and what == "outbox rows":
            in_another_thread(commit)

    shards = [(f"shard {i}", shard) for i, shard in enumerate(store.shards)]
    _, total = audit_shards(
        shards, store.shard_of_user, progress, max_in_flight_s=STUCK_S, now_ms=SOON_MS
    )
    return total


def test_a_debit_committed_after_its_shards_snapshot_is_found(sharded: ShardedStore) -> None:
    """Debit and credit both commit between the snapshot of shard 0 (the source's) and
    that of shard 1: the credit is seen, its debit is read after the scan."""
    consumer = Consumer(sharded)
    consumer.apply(deposit("d1", SOURCE, 100))
    debit = transfer("T", 10)

    def transfer_now() -> None:
        consumer.apply(debit)
        consumer.apply(debit.credit())

    report = audit_with_commit_between_shards(sharded, transfer_now)
    assert report.ok, report.problems
    assert report.transfers is not None
    assert (report.transfers.transfers, report.transfers.in_flight) == (1, 0)


def test_a_credit_whose_debit_never_committed_is_found_on_shards(sharded: ShardedStore) -> None:
    """The look after the scan finds no debit: a finding, as on one store."""
    consumer = Consumer(sharded)
    report = audit_with_commit_between_shards(
        sharded, lambda: consumer.apply(transfer("T", 10).credit())
    )
    assert "transfer T: a credit without its debit" in report.problems


def test_locks_replay_clean_and_a_lock_after_the_journal_does_not_explain_is_found(
    consumer: Consumer,
) -> None:
    """A debit lock, a deposit under it and an unlock replay to the balance (no problem);
    an entry whose lock after differs from the replayed lock (the account's balance, being
    its newest entry) is a finding."""
    lock = ChangeRequest("l1", SOURCE, "USD", ChangeType.LOCK_DEBITS, 0, "review")
    consumer.apply(lock)
    consumer.apply(deposit("d2", SOURCE, 5))
    assert audited(consumer.store).ok
    consumer.apply(ChangeRequest("u1", SOURCE, "USD", ChangeType.UNLOCK, 0))
    assert audited(consumer.store).ok
    unlocked = consumer.balances[Account(SOURCE, "USD")]
    odd = JournalEntry(
        "d9", SOURCE, "USD", ChangeType.DEPOSIT, SCALE, unlocked.available + SCALE,
        unlocked.frozen, unlocked.version + 1, APPLIED_AT_MS, lock_after=AccountLock.FULL,
    )  # fmt: skip
    consumer.store.commit_batch(BatchCommit([], [odd], [], APPLIED_AT_MS))
    report = audited(consumer.store)
    assert not report.ok
    assert any("lock" in problem for problem in report.problems), report.problems
