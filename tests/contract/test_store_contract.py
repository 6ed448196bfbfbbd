"""The Store interface's contract, run against every store backend."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from harness import fresh_mysql_store
from store_contract_support import BlankDatabase, FakeClock

from ledgerd.consumer.columns import journal_entry, rejection
from ledgerd.domain.amounts import MAX_SCALED, SCALE
from ledgerd.domain.model import (
    LEGS_PER_MESSAGE,
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
    StoredRequest,
)
from ledgerd.errors import Fenced, TransientStoreError
from ledgerd.store.base import (
    BatchCommit,
    DecidedRows,
    JournalRow,
    LeaderLockRow,
    LockToken,
    PartitionClaim,
    RejectionRow,
    Store,
)
from ledgerd.store.scan import iter_balances
from ledgerd.store.sharded import ShardedStore
from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.dialect import Dialect, Outcome, Row, Session
from ledgerd.store.sql.statements import KEYS_PER_STATEMENT, insert_requests
from ledgerd.store.sqlite import SqliteStore

MAX_USER = 2**64 - 1


def request(n: int, user: int = 1, amount: int = SCALE, memo: str = "") -> ChangeRequest:
    return ChangeRequest(f"r{n}", user, "USD", ChangeType.DEPOSIT, amount, memo)


def accept(
    store: Store, requests: Sequence[ChangeRequest], now_ms: int = 1000
) -> Mapping[str, StoredRequest]:
    return store.accept_requests(
        [r.request_id for r in requests],
        lambda stored: [r for r in requests if r.request_id not in stored],
        now_ms,
    )


def entry(req: ChangeRequest, version: int, available: int) -> JournalEntry:
    return JournalEntry(
        req.request_id,
        req.user_id,
        req.currency,
        req.type,
        req.amount,
        available,
        0,
        version,
        5000,
        req.memo,
    )


def journaled(balances: Sequence[Balance]) -> list[JournalEntry]:
    """A journal entry ending at each balance: what the store keeps of it."""
    return [
        JournalEntry(
            f"j{b.user_id}-{b.currency}-{b.version}",
            b.user_id,
            b.currency,
            ChangeType.DEPOSIT,
            b.available,
            b.available,
            b.frozen,
            b.version,
            5000,
            lock_after=b.lock,
        )
        for b in balances
    ]


def leave_rows_as_before(store: Store, requests: Sequence[ChangeRequest], now_ms: int) -> None:
    """Put decided requests' outbox rows back, as consumers from before commits deleted
    them left them: for the sweep to find (in the user's shard on a sharded store)."""
    for req in requests:
        shard = (
            store.shards[store.shard_of_user(req.user_id)]
            if isinstance(store, ShardedStore)
            else store
        )
        assert isinstance(shard, SqlStore)
        with shard.dialect.autocommit() as session:
            session.batch(list(insert_requests([req], now_ms, None, shard.dialect, session.text)))


def test_migrate_twice_is_harmless(store: Store) -> None:
    """Running migrate again on a current schema changes nothing and does not fail."""
    store.migrate()
    store.ping()


def test_accepted_requests_read_back_exactly(store: Store) -> None:
    """Accepted rows read back PENDING with every field, at the extremes of the ranges."""
    extremes = [
        request(1, user=MAX_USER, amount=MAX_SCALED, memo='it\'s \\ "q" %s ✓ 𝄞\n' * 12),
        request(2, user=1, amount=1),
    ]
    assert accept(store, extremes) == {}
    stored = store.get_requests(["r1", "r2", "missing"])
    assert set(stored) == {"r1", "r2"}
    assert stored["r1"] == StoredRequest(extremes[0], ChangeStatus.PENDING)
    assert stored["r2"].request.amount == 1


def test_accept_returns_what_was_already_stored(store: Store) -> None:
    """accept_requests hands choose_new the existing rows and returns them."""
    accept(store, [request(1)])
    seen: list[Mapping[str, StoredRequest]] = []

    def choose(stored: Mapping[str, StoredRequest]) -> list[ChangeRequest]:
        seen.append(stored)
        return [request(2)]

    existing = store.accept_requests(["r1", "r2"], choose, 2000)
    # Called more than once maybe (first as if nothing were stored); the last call decides.
    assert set(existing) == {"r1"} and set(seen[-1]) == {"r1"}
    assert set(store.get_requests(["r1", "r2"])) == {"r1", "r2"}


def test_an_id_found_by_the_insert_voids_the_rows_inserted_with_it(store: Store) -> None:
    """An acceptance whose ids turn out partly stored keeps only what choose_new picks
    knowing them: rows a first, optimistic insert wrote beside the stored id are gone."""
    accept(store, [request(1, memo="first")])
    seen: list[Mapping[str, StoredRequest]] = []

    def all_or_nothing(stored: Mapping[str, StoredRequest]) -> list[ChangeRequest]:
        seen.append(stored)
        return [] if stored else [request(2), request(1, memo="second")]

    existing = store.accept_requests(["r1", "r2"], all_or_nothing, 2000)
    assert set(existing) == {"r1"} and set(seen[-1]) == {"r1"}
    assert set(store.get_requests(["r1", "r2"])) == {"r1"}
    assert store.get_requests(["r1"])["r1"].request.memo == "first"


def test_rejected_request_is_recognised_once_its_row_is_gone(store: Store) -> None:
    """The commit that rejects a request deletes its outbox row; the id is still taken:
    accepting it again reads it REJECTED and stores no new outbox row."""
    withdraw = ChangeRequest("r1", 1, "USD", ChangeType.WITHDRAW, SCALE)
    accept(store, [withdraw], now_ms=1000)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 1)],
            [],
            [Rejection(withdraw, RejectReason.INSUFFICIENT_AVAILABLE)],
            2000,
        )
    )
    assert store.scan_requests(None, 10) == []
    seen = accept(store, [withdraw], now_ms=9000)
    assert seen == {
        "r1": StoredRequest(withdraw, ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE)
    }
    assert store.scan_requests(None, 10) == []


def test_a_publish_group_spans_acceptances_with_one_row(store: Store) -> None:
    """Acceptances that join an open group (new_group=False) add no row of their own: the
    group's one row covers them all, for the sweep, until it is deleted."""
    store.accept_requests(["r1"], lambda _: [request(1)], 1000, "g-1")
    store.accept_requests(["r2"], lambda _: [request(2, user=5)], 1000, "g-1", new_group=False)
    store.accept_requests(["r3"], lambda _: [request(3)], 1000, "g-1", new_group=False)
    found = store.find_unsent(created_before_ms=2000, limit=10)
    assert {(u.stored.request.request_id, u.group_id) for u in found} == {
        ("r1", "g-1"),
        ("r2", "g-1"),
        ("r3", "g-1"),
    }
    store.delete_groups(["g-1"])
    assert store.find_unsent(created_before_ms=2000, limit=10) == []


def test_inserting_an_existing_id_is_a_transient_error_and_writes_nothing(store: Store) -> None:
    """A lost insert race raises TransientStoreError and rolls back the whole acceptance."""
    accept(store, [request(1)])
    with pytest.raises(TransientStoreError):
        store.accept_requests(["r2"], lambda _: [request(2), request(1)], 2000)
    assert set(store.get_requests(["r1", "r2"])) == {"r1"}


def test_relay_status_transitions(store: Store) -> None:
    """mark_failed and mark_sent count attempts; a row with an outcome reads as that outcome
    whatever its outbox status, and the sweep no longer finds it."""
    accept(store, [request(1), request(2), request(3)], now_ms=1000)
    store.mark_failed(["r1"], 1100)
    unsent = {
        u.stored.request.request_id: u for u in store.find_unsent(created_before_ms=1500, limit=10)
    }
    assert set(unsent) == {"r1", "r2", "r3"}
    assert (unsent["r1"].stored.status, unsent["r1"].attempts) == (ChangeStatus.FAILED, 1)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 1)],
            [entry(request(3), 1, SCALE)],
            [],
            5000,
        )
    )
    store.mark_sent(["r1", "r2", "r3"], 1200)
    statuses = {k: v.status for k, v in store.get_requests(["r1", "r2", "r3"]).items()}
    assert statuses == {
        "r1": ChangeStatus.SENT,
        "r2": ChangeStatus.SENT,
        "r3": ChangeStatus.APPLIED,
    }
    # SENT rows are in the log: they wait for their outcome however old; r3 has one.
    assert store.find_unsent(created_before_ms=5000, limit=10) == []
    store.mark_failed(["r2"], 1300)
    (failed,) = store.find_unsent(created_before_ms=0, limit=10)
    assert (failed.stored.request.request_id, failed.attempts) == ("r2", 2)
    assert failed.created_at_ms == 1000


def test_published_groups_are_not_swept_and_stale_groups_go_under_the_lock(
    store: Store,
) -> None:
    """Rows of a publish group are swept only while the group exists; deleting it says
    they are in the log. Stale groups go except those kept, and only under the lock."""
    store.accept_requests(["r1", "r2"], lambda _: [request(1), request(2)], 1000, "g-1")
    store.accept_requests(["r3"], lambda _: [request(3)], 1000, "g-2")
    found = store.find_unsent(created_before_ms=2000, limit=10)
    assert {(u.stored.request.request_id, u.group_id) for u in found} == {
        ("r1", "g-1"),
        ("r2", "g-1"),
        ("r3", "g-2"),
    }
    store.delete_groups(["g-1"])
    assert [u.stored.request.request_id for u in store.find_unsent(2000, 10)] == ["r3"]
    epoch = store.acquire_lock("jobs", "a", ttl_ms=10_000)
    assert epoch is not None
    with pytest.raises(Fenced):
        store.delete_stale_groups(5000, [], LockToken("jobs", "a", epoch + 1))
    assert store.delete_stale_groups(5000, ["g-2"], LockToken("jobs", "a", epoch)) == 0
    assert store.delete_stale_groups(5000, [], LockToken("jobs", "a", epoch)) == 1
    assert store.find_unsent(2000, 10) == []


def test_find_unsent_skips_pending_rows_younger_than_the_cutoff(store: Store) -> None:
    """PENDING rows created after the cutoff are left to the acceptor's hand-off."""
    accept(store, [request(1)], now_ms=1000)
    accept(store, [request(2)], now_ms=3000)
    found = [
        u.stored.request.request_id for u in store.find_unsent(created_before_ms=2000, limit=10)
    ]
    assert found == ["r1"]


def test_claim_partition_bumps_the_epoch_and_keeps_the_offset(store: Store) -> None:
    """Each claim gets a higher epoch and resumes at the committed offset."""
    first = store.claim_partition("t", 2)
    assert first.next_offset == 0
    store.commit_batch(BatchCommit([PartitionClaim("t", 2, first.epoch, 42)], [], [], 1))
    second = store.claim_partition("t", 2)
    assert second.epoch > first.epoch and second.next_offset == 42
    assert store.get_positions("t") == {2: 42}


def test_last_applied_at_ms_is_the_newest_journal_entry(store: Store) -> None:
    """None on an empty journal, then the largest applied_at_ms, not the last written."""
    assert store.last_applied_at_ms() is None
    first, second = request(1), request(2, user=2)
    accept(store, [first, second])
    claim = store.claim_partition("t", 0)

    def commit(req: ChangeRequest, offset: int, applied_at_ms: int) -> None:
        journal = [replace(entry(req, 1, SCALE), applied_at_ms=applied_at_ms)]
        position = PartitionClaim("t", 0, claim.epoch, offset)
        store.commit_batch(BatchCommit([position], journal, [], applied_at_ms))

    commit(first, 1, 9000)
    assert store.last_applied_at_ms() == 9000
    commit(second, 2, 7000)
    assert store.last_applied_at_ms() == 9000


def test_decided_requests_spans_several_statements_and_both_outcomes(store: Store) -> None:
    """More ids than one statement lists, unsorted: exactly those journaled or rejected
    come back, from either side of a statement's boundary."""
    journaled, rejected = request(1, amount=5 * SCALE), request(2)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 2)],
            [entry(journaled, 1, 5 * SCALE)],
            [Rejection(rejected, RejectReason.INSUFFICIENT_AVAILABLE)],
            5000,
        )
    )
    unknown = [f"n{i}" for i in range(KEYS_PER_STATEMENT + 10)]
    asked = [*unknown[:10], "r2", *unknown[10:], "r1"]
    assert set(store.decided_requests(asked)) == {"r1", "r2"}
    assert set(store.decided_requests([])) == set()


def test_load_balances_returns_exactly_the_accounts_asked_for(store: Store) -> None:
    """Accounts in several currencies, of users holding other currencies too (not asked
    for), one at the largest user id: each asked account that has a balance, and no
    other; an empty ask reads nothing."""
    top = 2**64 - 1
    stored = [
        Balance(user_id, currency, user_id % 1000 * SCALE, 0, 1)
        for user_id in (1, 2, 3, top)
        for currency in ("USD", "EUR", "BTC")
    ]
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit([PartitionClaim("t", 0, claim.epoch, 1)], journaled(stored), [], 5)
    )
    asked = [
        Account(1, "USD"), Account(2, "EUR"), Account(2, "BTC"), Account(top, "EUR"),
        Account(3, "GBP"), Account(4, "USD"),
    ]  # fmt: skip
    by_account = {balance.account: balance for balance in stored}
    assert store.load_balances(asked) == {a: by_account[a] for a in asked if a in by_account}
    assert store.load_balances([]) == {}


def test_commit_batch_writes_everything_together(store: Store) -> None:
    """Balances, journal, rejections and the offset all land in one commit."""
    deposit, rejected = request(1, amount=5 * SCALE), request(2)
    accept(store, [deposit, rejected])
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 7)],
            [entry(deposit, 1, 5 * SCALE)],
            [Rejection(rejected, RejectReason.INSUFFICIENT_AVAILABLE)],
            5000,
        )
    )
    assert store.get_balances(1, "USD") == [Balance(1, "USD", 5 * SCALE, 0, 1)]
    assert store.load_balances([Account(1, "USD"), Account(1, "EUR")]) == {
        Account(1, "USD"): Balance(1, "USD", 5 * SCALE, 0, 1)
    }
    assert store.get_journal(1, "USD", 0, 10) == [entry(deposit, 1, 5 * SCALE)]
    assert store.get_journal_entries(["r1", "r2"]) == {"r1": entry(deposit, 1, 5 * SCALE)}
    assert set(store.decided_requests(["r1", "r2", "r3"])) == {"r1", "r2"}
    stored = store.get_requests(["r1", "r2"])
    assert stored["r2"] == StoredRequest(
        rejected, ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE
    )
    assert stored["r1"].status is ChangeStatus.APPLIED
    assert store.get_positions("t") == {0: 7}


def test_stale_epoch_is_fenced_and_writes_nothing(store: Store) -> None:
    """A commit with an epoch older than the latest claim raises Fenced; nothing is written."""
    # User 4 is in partition 1 (of 3), as a consumer's batch has only its partitions' users.
    accept(store, [request(1, user=4)])
    old = store.claim_partition("t", 1)
    store.claim_partition("t", 1)
    with pytest.raises(Fenced) as raised:
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 1, old.epoch, 9)],
                [entry(request(1, user=4), 1, SCALE)],
                [Rejection(request(2, user=4), RejectReason.INSUFFICIENT_AVAILABLE)],
                5000,
            )
        )
    assert raised.value.partition == 1
    assert store.get_balances(4, None) == []
    assert store.get_requests(["r1"])["r1"].status is ChangeStatus.PENDING
    assert store.get_requests(["r2"]) == {}
    assert store.get_positions("t") == {1: 0}


def test_an_accounts_balance_is_its_newest_journal_entry(store: Store) -> None:
    """A later batch's entry is the account's balance (none before its first entry), in
    every read: by account, by user and in the audit's scan."""
    claim = store.claim_partition("t", 0)
    assert store.load_balances([Account(9, "BTC")]) == {}
    assert store.get_balances(9, None) == []
    for version in (1, 2):
        balances = [Balance(9, "BTC", version * SCALE, 3, version)]
        store.commit_batch(
            BatchCommit(
                [PartitionClaim("t", 0, claim.epoch, version)],
                journaled(balances),
                [],
                1,
            )
        )
    newest = Balance(9, "BTC", 2 * SCALE, 3, 2)
    assert store.get_balances(9, "BTC") == store.get_balances(9, None) == [newest]
    assert store.load_balances([Account(9, "BTC")]) == {Account(9, "BTC"): newest}
    assert list(iter_balances(store)) == [newest]


def test_an_account_with_only_a_refused_change_has_no_balance(store: Store) -> None:
    """No journal entry, no balance: an account whose only change was refused reads as
    never changed in every read."""
    claim = store.claim_partition("t", 0)
    refused = request(1, user=4)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 1)],
            [],
            [Rejection(refused, RejectReason.INSUFFICIENT_AVAILABLE)],
            1,
        )
    )
    assert store.get_balances(4, None) == []
    assert store.load_balances([Account(4, "USD")]) == {}
    assert list(iter_balances(store)) == []


def test_get_balances_lists_currencies_in_order(store: Store) -> None:
    """All currencies of a user come back sorted by code; other users' do not."""
    claim = store.claim_partition("t", 0)
    rows = [Balance(5, c, SCALE, 0, 1) for c in ("USD", "BTC", "EUR")] + [
        Balance(6, "AAA", 1, 0, 1)
    ]
    store.commit_batch(
        BatchCommit([PartitionClaim("t", 0, claim.epoch, 1)], journaled(rows), [], 1)
    )
    assert [b.currency for b in store.get_balances(5, None)] == ["BTC", "EUR", "USD"]


def test_journal_pages_by_version(store: Store) -> None:
    """get_journal returns versions after the given one, ascending, at most limit."""
    reqs = [request(n, amount=SCALE) for n in range(1, 6)]
    accept(store, reqs)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 5)],
            [entry(r, i + 1, (i + 1) * SCALE) for i, r in enumerate(reqs)],
            [],
            1,
        )
    )
    assert [e.version for e in store.get_journal(1, "USD", 2, 2)] == [3, 4]
    assert [e.version for e in store.get_journal(1, "USD", 5, 10)] == []


def test_scans_page_through_everything_in_key_order(store: Store) -> None:
    """scan_balances, scan_journal and scan_requests page by key without gaps or repeats."""

    def pages(scan, key):  # type: ignore[no-untyped-def]
        seen, after = [], None
        while page := scan(after, 7):
            seen += page
            after = key(page[-1])
        return seen

    reqs = [
        ChangeRequest(f"s{n:03d}", n % 4 + 1, "USD", ChangeType.DEPOSIT, SCALE) for n in range(30)
    ]
    accept(store, reqs)
    # The outbox rows, before the commit that decides them deletes them.
    assert [
        r.request.request_id for r in pages(store.scan_requests, lambda r: r.request.request_id)
    ] == [r.request_id for r in reqs]
    claim = store.claim_partition("t", 0)
    versions: dict[int, int] = {}
    journal = []
    for r in reqs:
        versions[r.user_id] = versions.get(r.user_id, 0) + 1
        journal.append(entry(r, versions[r.user_id], versions[r.user_id] * SCALE))
    store.commit_batch(BatchCommit([PartitionClaim("t", 0, claim.epoch, 30)], journal, [], 1))
    scanned = pages(store.scan_journal, lambda e: (e.user_id, e.currency, e.version))
    assert [(e.user_id, e.version) for e in scanned] == sorted(
        (e.user_id, e.version) for e in journal
    )
    assert [b.user_id for b in pages(store.scan_balances, lambda b: b.account)] == [1, 2, 3, 4]


def test_count_unfinished_counts_rows_without_an_outcome(store: Store) -> None:
    """PENDING, SENT and FAILED rows are counted by status; final rows are not."""
    accept(store, [request(n) for n in range(1, 6)])
    store.mark_sent(["r1", "r2"], 2000)
    store.mark_failed(["r3"], 2000)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 1)],
            [],
            [Rejection(request(1), RejectReason.INSUFFICIENT_AVAILABLE)],
            1,
        )
    )
    assert store.count_unfinished() == {
        ChangeStatus.PENDING: 2,
        ChangeStatus.SENT: 1,
        ChangeStatus.FAILED: 1,
    }


def test_snapshot_reads_do_not_see_later_commits(store: Store) -> None:
    """Inside snapshot(), a commit made by another thread stays invisible."""
    import threading

    accept(store, [request(1)])
    with store.snapshot():
        assert [r.request.request_id for r in store.scan_requests(None, 10)] == ["r1"]
        writer = threading.Thread(target=accept, args=(store, [request(2)]))
        writer.start()
        writer.join()
        assert [r.request.request_id for r in store.scan_requests(None, 10)] == ["r1"]
    assert len(store.scan_requests(None, 10)) == 2


def test_lock_is_exclusive_until_it_expires_and_the_epoch_grows(
    clocked_store: Store, clock: FakeClock
) -> None:
    """A held lock refuses others; after its TTL another owner takes it with a higher epoch."""
    store = clocked_store
    first = store.acquire_lock("jobs", "a", ttl_ms=300)
    assert first is not None
    assert store.acquire_lock("jobs", "b", ttl_ms=300) is None
    clock.advance(299)
    assert store.acquire_lock("jobs", "b", ttl_ms=300) is None
    clock.advance(1)
    second = store.acquire_lock("jobs", "b", ttl_ms=300)
    assert second is not None and second > first
    assert not store.renew_lock(LockToken("jobs", "a", first), ttl_ms=300)


def test_renewal_keeps_the_lock_and_release_frees_it(
    clocked_store: Store, clock: FakeClock
) -> None:
    """Renewing extends the lock past its first TTL; releasing lets another take it at once."""
    store = clocked_store
    epoch = store.acquire_lock("jobs", "a", ttl_ms=400)
    assert epoch is not None
    token = LockToken("jobs", "a", epoch)
    for _ in range(3):
        clock.advance(200)
        assert store.renew_lock(token, ttl_ms=400)
    assert store.acquire_lock("jobs", "b", ttl_ms=400) is None
    store.release_lock(token)
    assert store.acquire_lock("jobs", "b", ttl_ms=400) == epoch + 1


def test_leader_locks_list_each_holder_and_its_time_left(
    clocked_store: Store, clock: FakeClock
) -> None:
    """The operators' listing: every lock by name, its owner and epoch, and the time left by
    the store's clock (none once it expired)."""
    store = clocked_store
    jobs = store.acquire_lock("jobs", "host:1:a", ttl_ms=1000)
    sweep = store.acquire_lock("sweep", "host:2:b", ttl_ms=5000)
    assert jobs is not None and sweep is not None
    clock.advance(400)
    assert store.leader_locks() == [
        LeaderLockRow("jobs", "host:1:a", jobs, 600),
        LeaderLockRow("sweep", "host:2:b", sweep, 4600),
    ]
    clock.advance(600)
    assert store.leader_locks()[0].expires_in_ms <= 0


def test_an_expired_lock_fences_cleanup_and_cannot_be_renewed(
    clocked_store: Store, clock: FakeClock
) -> None:
    """Past its TTL a lock no longer authorises deletes, nor renews, even with no new owner."""
    store = clocked_store
    epoch = store.acquire_lock("jobs", "a", ttl_ms=1000)
    assert epoch is not None
    token = LockToken("jobs", "a", epoch)
    clock.advance(1000)
    with pytest.raises(Fenced):
        store.delete_finished_requests(5000, 100, token)
    assert not store.renew_lock(token, ttl_ms=1000)


def test_locks_run_on_the_database_clock_by_default(store: Store) -> None:
    """Without a test clock, expiry compares against the database's clock: a zero TTL
    expires at once, a long one holds."""
    zero = store.acquire_lock("now", "a", ttl_ms=0)
    assert zero is not None
    assert store.acquire_lock("now", "b", ttl_ms=0) == zero + 1
    held = store.acquire_lock("later", "a", ttl_ms=600_000)
    assert held is not None
    assert store.acquire_lock("later", "b", ttl_ms=600_000) is None
    assert store.renew_lock(LockToken("later", "a", held), ttl_ms=600_000)


def test_cleanup_deletes_old_finished_rows_only_under_the_lock(store: Store) -> None:
    """Finished rows older than the cutoff go (rows a consumer from before commits deleted
    them left behind); in-flight rows stay; a stale token is fenced."""
    accept(store, [request(1), request(2), request(3)], now_ms=1000)
    accept(store, [request(4)], now_ms=9000)
    claim = store.claim_partition("t", 0)
    rejections = [Rejection(request(n), RejectReason.INSUFFICIENT_AVAILABLE) for n in (1, 2, 4)]
    store.commit_batch(BatchCommit([PartitionClaim("t", 0, claim.epoch, 3)], [], rejections, 1))
    leave_rows_as_before(store, [request(1), request(2)], now_ms=1000)
    leave_rows_as_before(store, [request(4)], now_ms=9000)
    epoch = store.acquire_lock("jobs", "a", ttl_ms=10_000)
    assert epoch is not None
    with pytest.raises(Fenced):
        store.delete_finished_requests(5000, 100, LockToken("jobs", "a", epoch + 1))
    assert store.delete_finished_requests(5000, 100, LockToken("jobs", "a", epoch)) == 2
    assert [u.stored.request.request_id for u in store.find_unsent(10_000, 10)] == ["r3"]
    assert sorted(r.request.request_id for r in store.scan_requests(None, 10)) == ["r3", "r4"]
    # Their rejection records answer for the deleted rows.
    assert store.get_requests(["r1"]) == {
        "r1": StoredRequest(request(1), ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE)
    }
    assert store.count_unfinished()[ChangeStatus.PENDING] == 1


def test_applied_request_is_recognised_from_the_journal_once_its_row_is_gone(
    store: Store,
) -> None:
    """The commit that applies a request deletes its outbox row; the request then reads as
    APPLIED from its journal entry, and accepting it again stores no new row."""
    deposit = request(1, memo="keep")
    accept(store, [deposit], now_ms=1000)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 1)],
            [entry(deposit, 1, SCALE)],
            [],
            2000,
        )
    )
    assert store.scan_requests(None, 10) == []
    assert store.get_requests(["r1"]) == {"r1": StoredRequest(deposit, ChangeStatus.APPLIED)}
    seen = accept(store, [deposit], now_ms=9000)
    assert seen == {"r1": StoredRequest(deposit, ChangeStatus.APPLIED)}
    assert store.scan_requests(None, 10) == []


def test_a_commit_deletes_the_outbox_rows_of_what_it_decided_only(store: Store) -> None:
    """Applied and rejected requests leave the outbox with the commit that records their
    outcome; a request the batch did not decide keeps its row, and so does a follow-up
    the batch sends on."""
    applied, rejected, waiting = request(1), request(2), request(3)
    accept(store, [applied, rejected, waiting])
    debit = ChangeRequest("t1", 1, "USD", ChangeType.TRANSFER_OUT, SCALE, "", "t1", 2)
    claim = store.claim_partition("t", 0)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, 2)],
            [entry(applied, 1, SCALE)],
            [Rejection(rejected, RejectReason.INSUFFICIENT_AVAILABLE)],
            2000,
            follow_ups=[debit.credit()],
            follow_up_group="g-follow",
        )
    )
    assert sorted(r.request.request_id for r in store.scan_requests(None, 10)) == [
        "r3",
        debit.credit().request_id,
    ]
    assert sum(store.count_unfinished().values()) == 2


# -- read fences ---------------------------------------------------------------
def test_a_lease_is_granted_only_for_the_current_generation(
    clocked_store: Store, clock: FakeClock
) -> None:
    """grant_lease succeeds for the fence's current generation; once a raise starts a new
    generation, a grant for the old one is refused and one for the new one succeeds."""
    store = clocked_store
    generation = store.fence_generation("fence")
    assert store.grant_lease("fence", generation, ttl_ms=1000)
    store.raise_fence("fence")
    assert store.fence_generation("fence") == generation + 1
    assert not store.grant_lease("fence", generation, ttl_ms=1000)
    assert store.grant_lease("fence", generation + 1, ttl_ms=1000)


def test_a_raise_reports_how_long_the_last_lease_still_runs(
    clocked_store: Store, clock: FakeClock
) -> None:
    """raise_fence returns the milliseconds left of the lease granted last (by the store's
    clock), and 0 once it has run out: what a raising process must wait out."""
    store = clocked_store
    assert store.raise_fence("fence") == 0  # no lease was ever granted
    assert store.grant_lease("fence", store.fence_generation("fence"), ttl_ms=3000)
    clock.advance(1000)
    assert store.raise_fence("fence") == 2000
    clock.advance(2000)
    assert store.raise_fence("fence") == 0


def test_a_batch_committed_as_rows_reads_back_as_its_objects(store: Store) -> None:
    """The consumer's column path hands journal and rejections as rows (``DecidedRows``):
    they are stored exactly as the same batch's objects would be."""
    deposit = ChangeRequest("d.1", MAX_USER, "USD", ChangeType.DEPOSIT, MAX_SCALED, "it's \\ é")
    rejected = ChangeRequest("w:2", 3, "X1", ChangeType.WITHDRAW, 7, "'")
    accept(store, [deposit, rejected])
    claim = store.claim_partition("t", 1)
    journal_rows: list[JournalRow] = [
        (
            "d.1", MAX_USER, "USD", ChangeType.DEPOSIT, MAX_SCALED, MAX_SCALED, 0, 1, 5000,
            "it's \\ é", "", 0, 1, 9 * LEGS_PER_MESSAGE + 1, "", 0,
        )
    ]  # fmt: skip
    rejection_rows: list[RejectionRow] = [
        ("w:2", 3, "X1", ChangeType.WITHDRAW, 7, "'", RejectReason.INSUFFICIENT_AVAILABLE)
    ]
    journal = [journal_entry(row) for row in journal_rows]
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 1, claim.epoch, 10)],
            journal,
            [rejection(row) for row in rejection_rows],
            5000,
            rows=DecidedRows(journal_rows, rejection_rows),
        )
    )
    assert store.get_journal(MAX_USER, "USD", 0, 10) == journal
    assert list(store.scan_events(1, 0, 10)) == journal
    assert store.get_requests(["w:2"])["w:2"] == StoredRequest(
        rejected, ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE
    )


class _RecordingSession:
    def __init__(self, inner: Session, statements: list[str]) -> None:
        self.inner = inner
        self._statements = statements

    def execute(self, sql: str, params: Sequence[object] | None = None) -> int:
        self._statements.append(sql)
        return self.inner.execute(sql, params)

    def query(self, sql: str, params: Sequence[object] | None = None) -> list[Row]:
        self._statements.append(sql)
        return self.inner.query(sql, params)

    def batch(self, sql: Sequence[str], *, commit: bool = False) -> list[Outcome]:
        self._statements.extend(sql)
        return self.inner.batch(sql, commit=commit)

    def execute_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        self._statements.append(sql)
        return self.inner.execute_rows(sql, rows)

    def text(self, value: str) -> str:
        return self.inner.text(value)


class _RecordingDialect:
    """A dialect that lists the statements of its transactions."""

    def __init__(self, inner: Dialect) -> None:
        self.inner = inner
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def transaction(self) -> Iterator[_RecordingSession]:
        with self.inner.transaction() as session:
            yield _RecordingSession(session, self.statements)


def test_new_ids_are_inserted_without_a_read_first(blank_db: BlankDatabase) -> None:
    """On one database, an acceptance of new ids reads nothing before its insert: the
    insert itself (then an index-only outcome check) proves they are new."""
    migrated = blank_db.open()
    migrated.migrate()
    recording = _RecordingDialect(migrated.dialect)
    store = SqlStore(recording)  # type: ignore[arg-type]
    seen: list[Mapping[str, StoredRequest]] = []

    def choose(stored: Mapping[str, StoredRequest]) -> list[ChangeRequest]:
        seen.append(stored)
        return [request(1), request(2)]

    assert store.accept_requests(["r1", "r2"], choose, 1000, "g-1") == {}
    assert seen == [{}]
    assert recording.statements[0].startswith(
        ("INSERT INTO change_requests", "INSERT IGNORE INTO change_requests")
    )
    assert set(store.get_requests(["r1", "r2"])) == {"r1", "r2"}


class _TextDialect:
    """SQLite's dialect writing every row as literals, as on MySQL (``binds_rows`` off)."""

    binds_rows = False

    def __init__(self, inner: Dialect) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _stored_rows(store: SqlStore) -> dict[str, list[Row]]:
    """Every row of the tables the bound path writes, with each value's SQLite type."""
    tables = {"change_requests": "request_id", "journal": "1"}
    found: dict[str, list[Row]] = {}
    with store.dialect.autocommit() as session:
        for table, order in tables.items():
            columns = [row[1] for row in session.query(f"PRAGMA table_info({table})")]
            typed = ", ".join(f"{c}, typeof({c})" for c in columns)
            found[table] = session.query(f"SELECT {typed} FROM {table} ORDER BY {order}")
    return found


def test_bound_rows_store_what_the_literal_statements_store(tmp_path: Path) -> None:
    """SQLite binds the outbox and journal rows to one statement each
    (``binds_rows``): what it stores, value and type, is what the literal statements
    (MySQL's path) store, for extreme ids, amounts and free text."""
    memo = 'it\'s \\ "q" %s ? ✓ 𝄞\n'
    requests = [
        ChangeRequest("d.1", MAX_USER, "USD", ChangeType.DEPOSIT, MAX_SCALED, memo),
        replace(request(2, user=0, amount=1), actor="ops ✓", hold_id="h-1", expires_at_ms=9),
        ChangeRequest("w:3", 3, "X1", ChangeType.WITHDRAW, 7, "", transfer_id="t~in"),
    ]
    journal = [
        replace(entry(requests[0], 1, MAX_SCALED), partition=2, event_seq=5),
        replace(entry(requests[1], 4, 1), actor="ops ✓", hold_id="h-1"),
    ]
    journal_rows: list[JournalRow] = [
        ("w:3", 3, "X1", ChangeType.WITHDRAW, 7, 0, 7, 2, 5000, "", "t~in", 9, 1, 3, "", 1),
    ]
    dumps = []
    for binds in (True, False):
        sqlite = SqliteStore(tmp_path / f"binds-{binds}.sqlite")
        sqlite.migrate()
        store = SqlStore(sqlite.dialect if binds else _TextDialect(sqlite.dialect))  # type: ignore[arg-type]
        assert (
            store.accept_requests([r.request_id for r in requests], lambda _: requests, 1000, "g-1")
            == {}
        )
        claim = store.claim_partition("t", 0)
        for batch in (
            BatchCommit([PartitionClaim("t", 0, claim.epoch, 5)], journal, [], 5000),
            BatchCommit(
                [PartitionClaim("t", 0, claim.epoch, 6)],
                [journal_entry(row) for row in journal_rows],
                [],
                6000,
                rows=DecidedRows(journal_rows, []),
            ),
        ):
            store.commit_batch(batch)
        assert (
            store.accept_requests(  # outbox rows that stay
                ["n.4"], lambda _: [request(4, memo=memo)], 7000, "g-2"
            )
            == {}
        )
        dumps.append(_stored_rows(store))
        sqlite.close()
    bound, literal = dumps
    assert bound == literal
    assert [len(rows) for rows in bound.values()] == [1, 3]


@pytest.fixture(params=["sqlite", "mysql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A migrated store of the SQL core, on each engine."""
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "store.sqlite")
        store.migrate()
        yield store
        store.close()
        return
    with fresh_mysql_store() as backend:
        assert isinstance(backend, SqlStore)
        yield backend


def _groups(store: SqlStore) -> list[tuple[str, int]]:
    with store.dialect.autocommit() as session:
        found = session.query("SELECT group_id, created_at_ms FROM publish_groups ORDER BY 1")
    return [(str(g), int(t)) for g, t in found]


def test_a_batch_reports_what_each_statement_did(sql_store: SqlStore) -> None:
    """Session.batch answers each statement in order: rows written, rows matched (an
    UPDATE that changes nothing still matches), a query's rows."""
    with sql_store.dialect.transaction() as session:
        outcomes = session.batch(
            [
                "INSERT INTO publish_groups (group_id, created_at_ms)"
                " VALUES ('g-a', 1), ('g-b', 2)",
                "UPDATE publish_groups SET created_at_ms = 1 WHERE group_id = 'g-a'",
                "SELECT group_id FROM publish_groups ORDER BY group_id",
            ]
        )
    assert [(o.affected, [tuple(r) for r in o.rows]) for o in outcomes] == [
        (2, []),
        (1, []),
        (2, [("g-a",), ("g-b",)]),
    ]
    assert _groups(sql_store) == [("g-a", 1), ("g-b", 2)]


def test_a_statement_failing_mid_batch_rolls_the_whole_transaction_back(
    sql_store: SqlStore,
) -> None:
    """A duplicate key in the middle of a batch (COMMIT folded in) raises the transient
    error it raises today; the statements before it are rolled back, those after it never
    run, and the next transaction on the store commits normally."""
    with pytest.raises(TransientStoreError), sql_store.dialect.transaction() as session:
        session.execute(
            "INSERT INTO publish_groups (group_id, created_at_ms) VALUES (?, ?)", ["g-0", 0]
        )
        session.batch(
            [
                "INSERT INTO publish_groups (group_id, created_at_ms) VALUES ('g-a', 1)",
                "INSERT INTO publish_groups (group_id, created_at_ms) VALUES ('g-a', 2)",
                "INSERT INTO publish_groups (group_id, created_at_ms) VALUES ('g-c', 3)",
            ],
            commit=True,
        )
    assert _groups(sql_store) == []
    with sql_store.dialect.transaction() as session:
        session.batch(
            ["INSERT INTO publish_groups (group_id, created_at_ms) VALUES ('g-d', 4)"],
            commit=True,
        )
    assert _groups(sql_store) == [("g-d", 4)]
