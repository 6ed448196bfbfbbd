"""The journal as of a moment (``Store.journal_version_before``), on every store backend."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ledgerd.audit import audit
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Account, Balance, ChangeRequest, ChangeType, JournalEntry
from ledgerd.history import JournalHistory, parse_page_token
from ledgerd.store.base import BatchCommit, PartitionClaim, Store

USER = 7


def journal_at(store: Store, applied_at_ms: Sequence[int], currency: str = "USD") -> None:
    """One deposit of 1 per stamp, versions 1.. in the given order, committed in one batch."""
    requests = [
        ChangeRequest(f"{currency}-{n}", USER, currency, ChangeType.DEPOSIT, SCALE, "")
        for n in range(len(applied_at_ms))
    ]
    store.accept_requests(
        [r.request_id for r in requests],
        lambda stored: [r for r in requests if r.request_id not in stored],
        1000,
    )
    entries = [
        JournalEntry(
            r.request_id, USER, currency, r.type, r.amount, (n + 1) * SCALE, 0, n + 1, at_ms, ""
        )
        for n, (r, at_ms) in enumerate(zip(requests, applied_at_ms, strict=True))
    ]
    claim = store.claim_partition("t", 0)
    count = len(entries)
    store.commit_batch(
        BatchCommit(
            [PartitionClaim("t", 0, claim.epoch, claim.next_offset + count)],
            entries,
            [],
            max(applied_at_ms),
        )
    )


def test_version_before_a_moment_is_the_last_entry_applied_before_it(store: Store) -> None:
    """Before the first entry: 0; between two entries: the earlier; at an entry's moment:
    the one before it (the moment is excluded); after the last: the latest."""
    journal_at(store, [1000, 2000, 2000, 3000])
    before = [store.journal_version_before(USER, "USD", at_ms) for at_ms in range(999, 3003)]
    assert before[0] == before[1] == 0  # 999 and 1000
    assert store.journal_version_before(USER, "USD", 1001) == 1
    assert store.journal_version_before(USER, "USD", 2000) == 1
    assert store.journal_version_before(USER, "USD", 2001) == 3
    assert store.journal_version_before(USER, "USD", 3000) == 3
    assert store.journal_version_before(USER, "USD", 3001) == 4
    assert store.journal_version_before(USER, "USD", 2**63 - 1) == 4
    assert before == sorted(before)  # never goes back as the moment moves on


def test_an_untouched_account_is_at_version_zero_at_every_moment(store: Store) -> None:
    """No entry of the account (another currency has some): 0, whatever the moment."""
    journal_at(store, [1000])
    assert store.journal_version_before(USER, "EUR", 5000) == 0
    assert store.journal_version_before(USER + 1, "USD", 5000) == 0


def test_an_account_of_many_versions_is_cut_at_every_moment(store: Store) -> None:
    """300 versions stamped in runs of equal stamps (one batch each): the lookup by halving
    finds the cut at each moment, an entry's own, between two and past the last."""
    stamps = [1000 + 10 * (n // 3) for n in range(300)]
    journal_at(store, stamps)
    for moment in range(990, stamps[-1] + 12, 5):
        expected = sum(1 for stamp in stamps if stamp < moment)
        assert store.journal_version_before(USER, "USD", moment) == expected, moment


def test_the_audit_reports_a_stamp_that_falls_and_only_within_an_account(store: Store) -> None:
    """Version 3 stamped before version 2 breaks what reads by time rely on: the audit names
    it. Another account's earlier stamps, and equal stamps, are no problem."""
    journal_at(store, [1000, 5000, 5000, 7000], currency="EUR")
    journal_at(store, [1000, 5000, 4000, 6000])
    report = audit(store)
    assert report.problems == [f"{Account(USER, 'USD')} v3: stamped 4000, before v2's 5000"]


def test_a_claim_carries_the_newest_stamp_recorded_over_every_partition(store: Store) -> None:
    """A batch's stamp is recorded with its offsets and never lowered by an older one; the
    claim of any partition (here one never claimed) carries the newest: its consumer
    stamps no batch earlier."""
    assert store.claim_partition("t", 5).stamped_at_ms == 0
    journal_at(store, [1000, 9000])
    late = store.claim_partition("t", 0)
    store.commit_batch(BatchCommit([late], [], [], 4000))  # a clock behind, unclamped
    assert store.claim_partition("t", 3).stamped_at_ms == 9000
    assert store.claim_partition("t", 0).stamped_at_ms == 9000


def statement(
    store: Store, from_ms: int, to_ms: int, page_size: int
) -> tuple[Balance, list[JournalEntry], Balance]:
    """Every page of the statement through ``JournalHistory``, as the API reads it."""
    history = JournalHistory(store)
    account = Account(USER, "USD")
    page = asyncio.run(history.statement(account, from_ms, to_ms, page_size, None))
    entries = list(page.entries)
    while page.next_page_token:
        continued = parse_page_token(page.next_page_token, USER, "USD", from_ms, to_ms)
        page = asyncio.run(history.statement(account, from_ms, to_ms, page_size, continued))
        entries += page.entries
    return page.opening.balance, entries, page.closing.balance


def test_statements_add_up_exactly_across_a_clock_that_went_back(store: Store) -> None:
    """Versions 1..6 as a failover to a slower clock journals them: version 4 was applied
    at 4000 by that clock, after version 3's 5000, so its consumer stamped it 5000 (the
    newest recorded stamp). Over every range of moments, in pages of 1 and 4, the entries
    are the versions between the opening's and the closing's, and opening + entries =
    closing."""
    journal_at(store, [1000, 2000, 5000, 5000, 6000, 7000])
    moments = [0, 1000, 1500, 4000, 4500, 5000, 5001, 6000, 7001]
    for from_ms in moments:
        for to_ms in (m for m in moments if m > from_ms):
            for page_size in (1, 4):
                opening, entries, closing = statement(store, from_ms, to_ms, page_size)
                assert [e.version for e in entries] == list(
                    range(opening.version + 1, closing.version + 1)
                )
                assert opening.available + sum(e.amount for e in entries) == closing.available
                assert all(from_ms <= e.applied_at_ms < to_ms for e in entries)
    _, entries, _ = statement(store, 4000, 5000, 10)
    assert entries == []
    _, entries, _ = statement(store, 5000, 5001, 10)
    assert [e.version for e in entries] == [3, 4]
