"""Holds on every store backend (schema 11): a hold committed with its batch reads back;
the sweep finds due open holds; a hold change's hold and expiry travel on the outbox row
and its rejection; the expiry sweep sends each expiry once, whoever sweeps."""

from __future__ import annotations

from ledgerd.audit import audit
from ledgerd.consumer.decide import decide_batch
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.holds import Hold, HoldState
from ledgerd.domain.model import (
    LEGS_PER_MESSAGE,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
)
from ledgerd.outbox.expiry import HoldExpirySweep, expiry_of
from ledgerd.store.base import BatchCommit, PartitionClaim, Store

USER = 1  # partition 0 of the test stores' partitions
OTHER = 4  # partition 1 (the other shard of a sharded store)


def _hold(hold_id: str, user: int, expires_at_ms: int, state: HoldState = HoldState.OPEN) -> Hold:
    return Hold(hold_id, user, "USD", 5 * SCALE, SCALE, state, expires_at_ms, 100, 200)


def _commit(
    store: Store,
    partition: int,
    offset: int,
    holds: list[Hold],
    entries: tuple[list[JournalEntry], list[Rejection]] = ([], []),
) -> None:
    claim = store.claim_partition("t", partition)
    position = PartitionClaim("t", partition, claim.epoch, offset)
    store.commit_batch(BatchCommit([position], *entries, 5000, holds=holds))


def test_holds_commit_with_their_batch_and_read_back(store: Store) -> None:
    """Holds of two users (two shards when sharded) load by id; a later commit updates one;
    the sweep finds the open ones due, earliest first."""
    _commit(store, 0, 1, [_hold("a", USER, 3000), _hold("b", USER, 9000)])
    _commit(store, 1, 1, [_hold("c", OTHER, 1000)])
    wanted = {(USER, "a"), (OTHER, "c"), (USER, "none")}
    assert store.load_holds(wanted) == {"a": _hold("a", USER, 3000), "c": _hold("c", OTHER, 1000)}
    assert [h.hold_id for h in store.due_holds(5000, 10)] == ["c", "a"]
    _commit(store, 0, 2, [_hold("a", USER, 3000, HoldState.RELEASED)])
    assert store.load_holds({(USER, "a")})["a"].state is HoldState.RELEASED
    assert [h.hold_id for h in store.due_holds(5000, 10)] == ["c"]
    assert [h.hold_id for h in store.scan_holds(None, 10)] == ["a", "b", "c"]


def test_a_hold_change_keeps_its_hold_on_the_outbox_row_journal_and_rejection(
    store: Store,
) -> None:
    """The sweep republishes a HOLD with its expiry; a capture's journal entry and a
    release's rejection name the hold (a retry of either compares equal)."""
    held = ChangeRequest(
        "h1", USER, "USD", ChangeType.HOLD, SCALE, hold_id="h1", expires_at_ms=99_000
    )
    store.accept_requests(["h1"], lambda _: [held], 1000)
    (unsent,) = store.find_unsent(created_before_ms=2000, limit=10)
    assert unsent.stored.request == held
    release = ChangeRequest("r1", USER, "USD", ChangeType.HOLD_RELEASE, 0, hold_id="h1")
    entry = JournalEntry(
        "c1", USER, "USD", ChangeType.HOLD_CAPTURE, SCALE, 0, 0, 2, 5000,
        partition=0, event_seq=LEGS_PER_MESSAGE + 1, hold_id="h1",
    )  # fmt: skip
    rejection = Rejection(release, RejectReason.HOLD_RELEASED)
    _commit(store, 0, 2, [], ([entry], [rejection]))
    assert store.get_journal(USER, "USD", 0, 10) == [entry]
    stored = store.get_requests(["c1", "r1"])
    assert stored["c1"].request.hold_id == "h1"
    assert stored["r1"].request.same_fields(release)
    assert stored["r1"].status is ChangeStatus.REJECTED


def test_the_expiry_sweep_sends_each_expiry_once_whoever_sweeps(store: Store) -> None:
    """Two sweepers (a new leader, or one after a crash) over the same due hold: the first
    accepts "<hold>~expire", the second finds it stored and sends nothing; a hold not yet
    due, and one not open, are left alone."""
    _commit(
        store, 0, 1,
        [_hold("due", USER, 1000), _hold("later", USER, 9000),
         _hold("gone", USER, 500, HoldState.CAPTURED)],
    )  # fmt: skip
    sent: list[list[str]] = []

    def sweeper() -> HoldExpirySweep:
        return HoldExpirySweep(
            store, lambda: True, 1.0,
            hand_off=lambda requests, _, __: sent.append([r.request_id for r in requests]),
            clock_ms=lambda: 5000,
        )  # fmt: skip

    assert sweeper().run_once() == 1
    assert sweeper().run_once() == 0
    assert sent == [["due~expire"]]
    (expiry,) = store.get_requests(["due~expire"]).values()
    assert (expiry.request.type, expiry.request.hold_id, expiry.request.user_id) == (
        ChangeType.HOLD_EXPIRE, "due", USER,
    )  # fmt: skip
    follower = HoldExpirySweep(store, lambda: False, 1.0, clock_ms=lambda: 5000)
    assert follower.run_once() == 0


def _apply(store: Store, changes: list[ChangeRequest], at_ms: int) -> None:
    """Decide the changes as the consumer does (against the store) and commit the batch."""
    accounts = {change.account for change in changes}
    stored = store.load_balances(accounts)
    balances = {a: stored.get(a) or Balance(a.user_id, a.currency) for a in accounts}
    named = {(c.user_id, c.hold_id) for c in changes if c.hold_id}
    decision = decide_batch(changes, set(), balances, at_ms, holds=store.load_holds(named))
    store.commit_batch(
        BatchCommit(
            [], decision.journal, decision.rejections, at_ms,
            holds=list(decision.holds.values()),
        )
    )  # fmt: skip
    for credit in decision.follow_ups:
        _apply(store, [credit], at_ms)


def _deposit(rid: str, user: int, amount: int) -> ChangeRequest:
    return ChangeRequest(rid, user, "USD", ChangeType.DEPOSIT, amount)


def _hold_of(rid: str, user: int, amount: int, expires_at_ms: int) -> ChangeRequest:
    return ChangeRequest(
        rid, user, "USD", ChangeType.HOLD, amount, hold_id=rid, expires_at_ms=expires_at_ms
    )


def test_the_audit_accepts_holds_captured_to_another_user_expired_and_open(
    store: Store,
) -> None:
    """A hold captured in part to another user (a transfer across shards when sharded),
    one expired, one open and not overdue: the journal replays, money and transfers add
    up, the holds are counted."""
    _apply(store, [_deposit("d1", USER, 10 * SCALE)], 1000)
    _apply(
        store,
        [
            _hold_of("h1", USER, 4 * SCALE, 2000), _hold_of("h2", USER, 3 * SCALE, 2000),
            _hold_of("h3", USER, 2 * SCALE, 90_000),
            ChangeRequest(
                "pay", USER, "USD", ChangeType.HOLD_CAPTURE, SCALE, transfer_id="pay",
                counterparty_user_id=OTHER, hold_id="h1",
            ),
            ChangeRequest("s1", USER, "USD", ChangeType.HOLD_CAPTURE, SCALE, hold_id="h2"),
        ],
        1500,
    )  # fmt: skip
    _apply(store, [expiry_of(h) for h in store.due_holds(3000, 10)], 3000)
    report = audit(store, now_ms=4000, max_in_flight_s=60)
    assert report.problems == []
    assert (report.holds, report.open_holds) == (3, 1)
    assert store.get_balances(OTHER, "USD")[0].available == SCALE
    assert store.get_balances(USER, "USD")[0].frozen == 2 * SCALE  # h3 alone


def test_the_audit_reports_an_overdue_hold_and_holds_beyond_frozen(store: Store) -> None:
    """An open hold past its expiry plus the bound is reported, and so is an account whose
    frozen amount (a client's UNFREEZE took it) is less than its open holds."""
    _apply(store, [_deposit("d1", USER, 10 * SCALE)], 1000)
    _apply(store, [_hold_of("h1", USER, 4 * SCALE, 2000)], 1500)
    _apply(store, [ChangeRequest("u1", USER, "USD", ChangeType.UNFREEZE, 3 * SCALE)], 1600)
    report = audit(store, now_ms=2000 + 61_000, max_in_flight_s=60)
    assert report.problem_count == 2, report.problems
    assert "hold h1" in report.problems[0] and "past its expiry" in report.problems[0]
    assert "open holds of 4 but frozen 1" in report.problems[1]
