"""Holds' rules (ledgerd.domain.holds), their decision in a batch (log order decides
between a capture and the expiry, the same on every replay), their wire form and the
API's field checks."""

from __future__ import annotations

import dataclasses

import pytest

from ledgerd.consumer.decide import decide_batch
from ledgerd.domain.holds import Hold, HoldApplied, HoldState, apply_hold_change
from ledgerd.domain.model import (
    Account,
    AccountLock,
    Balance,
    ChangeRequest,
    ChangeType,
    RejectReason,
)
from ledgerd.domain.rules import Rejected
from ledgerd.domain.validation import validate_hold_change
from ledgerd.errors import InvalidArgument, PoisonMessage
from ledgerd.log.codec import decode_change, encode_change
from ledgerd.outbox.expiry import expiry_of

USER, OTHER = 7, 8
NOW_MS = 1_000_000


def funded(available: int = 100, frozen: int = 0, lock: int = 0) -> Balance:
    return Balance(USER, "EUR", available, frozen, 3, lock)


def hold_request(amount: int = 60, rid: str = "h1") -> ChangeRequest:
    return ChangeRequest(
        rid, USER, "EUR", ChangeType.HOLD, amount, hold_id=rid, expires_at_ms=NOW_MS + 5000
    )


def capture(amount: int, rid: str = "c1", to_user: int = 0) -> ChangeRequest:
    return ChangeRequest(
        rid, USER, "EUR", ChangeType.HOLD_CAPTURE, amount,
        transfer_id=rid if to_user else "", counterparty_user_id=to_user, hold_id="h1",
    )  # fmt: skip


def release(rid: str = "r1") -> ChangeRequest:
    return ChangeRequest(rid, USER, "EUR", ChangeType.HOLD_RELEASE, 0, hold_id="h1")


def open_hold(amount: int = 60, captured: int = 0, state: HoldState = HoldState.OPEN) -> Hold:
    return Hold("h1", USER, "EUR", amount, captured, state, NOW_MS + 5000)


def applied(result: HoldApplied | Rejected) -> HoldApplied:
    assert isinstance(result, HoldApplied), result
    return result


def test_a_hold_moves_its_amount_from_available_to_frozen_under_an_open_hold() -> None:
    """HOLD 60 of 100: available 40, frozen 60, one version; the hold is OPEN, 60 remaining."""
    result = applied(apply_hold_change(funded(), None, hold_request(), NOW_MS))
    assert (result.balance.available, result.balance.frozen, result.balance.version) == (40, 60, 4)
    assert (result.hold.state, result.hold.remaining, result.hold.expires_at_ms) == (
        HoldState.OPEN, 60, NOW_MS + 5000,
    )  # fmt: skip


def test_a_hold_beyond_available_is_insufficient_available() -> None:
    """A HOLD is a FREEZE: more than available is INSUFFICIENT_AVAILABLE."""
    assert apply_hold_change(funded(10), None, hold_request(11), NOW_MS) == Rejected(
        RejectReason.INSUFFICIENT_AVAILABLE
    )


def test_captures_take_from_frozen_until_the_hold_is_captured_in_full() -> None:
    """Capture 25 of 60 leaves it OPEN with 35; capturing the 35 makes it CAPTURED."""
    first = applied(apply_hold_change(funded(40, 60), open_hold(), capture(25), NOW_MS))
    assert (first.balance.frozen, first.hold.captured, first.hold.state) == (
        35, 25, HoldState.OPEN,
    )  # fmt: skip
    second = applied(apply_hold_change(first.balance, first.hold, capture(35, "c2"), NOW_MS))
    assert (second.balance.frozen, second.hold.remaining, second.hold.state) == (
        0, 0, HoldState.CAPTURED,
    )  # fmt: skip


def test_a_release_returns_the_remainder_and_the_journal_amount_is_it() -> None:
    """Release after a capture of 25: the 35 left go back to available."""
    result = applied(apply_hold_change(funded(40, 35), open_hold(captured=25), release(), NOW_MS))
    assert (result.balance.available, result.balance.frozen, result.amount) == (75, 0, 35)
    assert result.hold.state is HoldState.RELEASED


@pytest.mark.parametrize(
    ("state", "change", "reason"),
    [
        (HoldState.RELEASED, capture(1), RejectReason.HOLD_RELEASED),
        (HoldState.EXPIRED, capture(1), RejectReason.HOLD_EXPIRED),
        (HoldState.CAPTURED, capture(1), RejectReason.HOLD_OVER_CAPTURE),
        (HoldState.RELEASED, release(), RejectReason.HOLD_RELEASED),
        (HoldState.EXPIRED, release(), RejectReason.HOLD_EXPIRED),
        (HoldState.CAPTURED, release(), RejectReason.HOLD_CAPTURED),
        (HoldState.RELEASED, expiry_of(open_hold()), RejectReason.HOLD_RELEASED),
    ],
)
def test_a_closed_hold_refuses_with_the_reason_it_closed(
    state: HoldState, change: ChangeRequest, reason: RejectReason
) -> None:
    """Capture after release or expiry, a second release, an expiry after a release: each
    REJECTED with its own reason, the balance untouched."""
    closed = open_hold(captured=60 if state is HoldState.CAPTURED else 0, state=state)
    assert apply_hold_change(funded(40, 60), closed, change, NOW_MS) == Rejected(reason)


def test_an_expiry_releases_at_most_what_is_frozen_and_always_closes_the_hold() -> None:
    """A client's UNFREEZE took 50 of a 60 hold's frozen money: the expiry releases the 10
    left (its journal amount) and the hold is EXPIRED, never stuck open."""
    result = applied(apply_hold_change(funded(90, 10), open_hold(), expiry_of(open_hold()), 1))
    assert (result.amount, result.balance.available, result.balance.frozen) == (10, 100, 0)
    assert result.hold.state is HoldState.EXPIRED


def test_over_capture_is_rejected() -> None:
    """Capturing more than remains is HOLD_OVER_CAPTURE."""
    assert apply_hold_change(
        funded(40, 60), open_hold(captured=50), capture(11), NOW_MS
    ) == Rejected(RejectReason.HOLD_OVER_CAPTURE)


def test_a_hold_of_another_account_or_none_is_not_found() -> None:
    """A capture naming no hold, or another user's or currency's, is HOLD_NOT_FOUND."""
    others = [None, dataclasses.replace(open_hold(), user_id=OTHER)]
    others.append(dataclasses.replace(open_hold(), currency="USD"))
    for other in others:
        assert apply_hold_change(funded(40, 60), other, capture(1), NOW_MS) == Rejected(
            RejectReason.HOLD_NOT_FOUND
        )


def test_a_debit_lock_refuses_holds_and_captures_but_not_releases() -> None:
    """HOLD and HOLD_CAPTURE are debits (ACCOUNT_LOCKED); a release keeps the money in the
    account and applies, the lock kept."""
    locked = funded(40, 60, AccountLock.DEBITS)
    locked_reason = Rejected(RejectReason.ACCOUNT_LOCKED)
    assert apply_hold_change(locked, None, hold_request(1), NOW_MS) == locked_reason
    assert apply_hold_change(locked, open_hold(), capture(1), NOW_MS) == locked_reason
    result = applied(apply_hold_change(locked, open_hold(), release(), NOW_MS))
    assert (result.balance.available, result.balance.lock) == (100, AccountLock.DEBITS)


def test_a_full_lock_lets_only_the_expiry_through() -> None:
    """Under a full lock a release is ACCOUNT_LOCKED; the expiry applies (sent once, it
    would otherwise leave the hold open for ever)."""
    locked = funded(40, 60, AccountLock.FULL)
    assert apply_hold_change(locked, open_hold(), release(), NOW_MS) == Rejected(
        RejectReason.ACCOUNT_LOCKED
    )
    result = applied(apply_hold_change(locked, open_hold(), expiry_of(open_hold()), NOW_MS))
    assert (result.balance.available, result.hold.state) == (100, HoldState.EXPIRED)
    assert result.balance.lock == AccountLock.FULL


def _decide(changes: list[ChangeRequest], holds: dict[str, Hold]) -> tuple[object, ...]:
    decision = decide_batch(
        changes, set(), {Account(USER, "EUR"): funded(40, 60)}, NOW_MS, holds=holds
    )
    return (
        [(e.request_id, e.type, e.amount) for e in decision.journal],
        [(r.request.request_id, r.reason) for r in decision.rejections],
        decision.holds,
        decision.balances,
    )


def test_log_order_decides_between_a_capture_and_the_expiry() -> None:
    """Capture then expiry: the capture applies, the expiry releases the rest. Expiry then
    capture: the capture is HOLD_EXPIRED. Deciding the same batch again (a replay) gives
    the same journal, rejections, holds and balances."""
    hold = open_hold()
    expiry = expiry_of(hold)
    capture_first = [capture(10), expiry]
    journal, rejections, holds, _ = _decide(capture_first, {"h1": hold})
    assert journal == [
        ("c1", ChangeType.HOLD_CAPTURE, 10),
        ("h1~expire", ChangeType.HOLD_EXPIRE, 50),
    ]
    assert rejections == []
    assert holds["h1"].state is HoldState.EXPIRED  # type: ignore[index]
    expiry_first = [expiry, capture(10)]
    journal, rejections, _, _ = _decide(expiry_first, {"h1": hold})
    assert journal == [("h1~expire", ChangeType.HOLD_EXPIRE, 60)]
    assert rejections == [("c1", RejectReason.HOLD_EXPIRED)]
    assert _decide(expiry_first, {"h1": hold}) == _decide(expiry_first, {"h1": hold})
    assert _decide(capture_first, {"h1": hold}) == _decide(capture_first, {"h1": hold})


def test_a_hold_opened_and_captured_in_one_batch_and_a_repeated_expiry_is_skipped() -> None:
    """A capture finds the hold its batch opened; the same expiry twice in a batch (a
    resend) is a duplicate, applied once."""
    expiry = expiry_of(open_hold())
    decision = decide_batch(
        [hold_request(60), capture(20), expiry, expiry], set(), {Account(USER, "EUR"): funded()},
        NOW_MS, holds={},
    )  # fmt: skip
    assert [e.request_id for e in decision.journal] == ["h1", "c1", "h1~expire"]
    assert decision.duplicates == 1
    assert decision.balances[Account(USER, "EUR")].available == 80
    assert [e.hold_id for e in decision.journal] == ["h1", "h1", "h1"]


def test_a_capture_to_another_user_sends_its_credit_once() -> None:
    """The capture is a transfer's debit from frozen: its credit is a follow-up."""
    decision = decide_batch(
        [capture(5, "pay", to_user=OTHER)], set(), {Account(USER, "EUR"): funded(40, 60)},
        NOW_MS, holds={"h1": open_hold()},
    )  # fmt: skip
    (credit,) = decision.follow_ups
    assert (credit.request_id, credit.user_id, credit.type, credit.amount) == (
        "pay~in", OTHER, ChangeType.TRANSFER_IN, 5,
    )  # fmt: skip


def test_hold_changes_travel_the_log_with_their_hold_and_expiry() -> None:
    """HOLD, capture to another user, release and expiry decode as they were encoded."""
    for change in (hold_request(), capture(5, "pay", OTHER), release(), expiry_of(open_hold())):
        assert decode_change(encode_change(change)) == change


def test_a_forged_expiry_or_a_hold_without_expiry_is_poison() -> None:
    """An expiry whose id is not its hold's, or a HOLD without an expiry, was not made by
    ledgerd: the consumer refuses the message."""
    forged = dataclasses.replace(expiry_of(open_hold()), request_id="other~expire")
    endless = dataclasses.replace(hold_request(), expires_at_ms=0)
    for change in (forged, endless):
        with pytest.raises(PoisonMessage):
            decode_change(encode_change(change))


def _client(**fields: object) -> ChangeRequest:
    defaults: dict[str, object] = {
        "request_id": "h1", "user_id": USER, "currency": "EUR", "change_type": 13,
        "amount": "1", "memo": "", "hold_id": "", "expires_at_ms": 0, "timeout_ms": 1000,
        "to_user_id": 0, "now_ms": NOW_MS,
    }  # fmt: skip
    return validate_hold_change(**{**defaults, **fields})  # type: ignore[arg-type]


def test_a_client_hold_is_its_own_hold_and_expires_after_its_timeout() -> None:
    """HOLD with timeout_ms: hold id = request id, expiry = acceptance + timeout."""
    change = _client()
    assert (change.hold_id, change.expires_at_ms) == ("h1", NOW_MS + 1000)
    assert _client(timeout_ms=0, expires_at_ms=NOW_MS + 5).expires_at_ms == NOW_MS + 5


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timeout_ms": 0}, "expires_at_unix_ms"),  # neither
        ({"expires_at_ms": NOW_MS + 9}, "expires_at_unix_ms"),  # both
        ({"timeout_ms": 0, "expires_at_ms": NOW_MS - 1}, "expires_at_unix_ms"),  # past
        ({"change_type": 15, "amount": "1", "hold_id": "h0", "timeout_ms": 0}, "amount"),
        ({"change_type": 14, "hold_id": "", "timeout_ms": 0}, "hold_id"),
        ({"change_type": 14, "hold_id": "h0"}, "expires_at_unix_ms"),
        ({"to_user_id": OTHER}, "to_user_id"),  # only a capture credits another user
        ({"change_type": 14, "hold_id": "h0", "timeout_ms": 0, "to_user_id": USER}, "to_user_id"),
    ],
)
def test_malformed_hold_changes_name_the_field(fields: dict[str, object], field: str) -> None:
    """Each malformed hold change is INVALID_ARGUMENT naming the field at fault."""
    with pytest.raises(InvalidArgument) as refused:
        _client(**fields)
    assert field in [v.field for v in refused.value.violations]


class _CountingStore:
    """The store part BalanceMemory reads holds from, counting the reads."""

    def __init__(self, holds: dict[str, Hold]) -> None:
        self.holds = holds
        self.reads = 0

    def load_holds(self, wanted: set[tuple[int, str]]) -> dict[str, Hold]:
        self.reads += 1
        return {h: self.holds[h] for _, h in wanted if h in self.holds}


def test_the_consumer_keeps_open_holds_in_memory_until_they_close_or_reset() -> None:
    """An open hold read once is served from memory; a committed change of it replaces it,
    a closed one is forgotten (read again from the store), and a reset forgets it too."""
    from ledgerd.consumer.memory import BalanceMemory

    store = _CountingStore({"h1": open_hold()})
    memory = BalanceMemory(100)
    wanted = {"h1": (0, USER)}
    assert memory.view_holds(wanted, store) == {"h1": open_hold()}  # type: ignore[arg-type]
    assert memory.view_holds(wanted, store) == {"h1": open_hold()}  # type: ignore[arg-type]
    assert store.reads == 1
    partition_of = {Account(USER, "EUR"): 0}
    captured = open_hold(captured=10)
    memory.remember_holds([captured], partition_of)
    assert memory.view_holds(wanted, store) == {"h1": captured}  # type: ignore[arg-type]
    memory.remember_holds([open_hold(state=HoldState.RELEASED)], partition_of)
    memory.view_holds(wanted, store)  # type: ignore[arg-type]
    assert store.reads == 2
    memory.reset([0])
    memory.view_holds(wanted, store)  # type: ignore[arg-type]
    assert store.reads == 3
