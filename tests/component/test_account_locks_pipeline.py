"""Locks through the real relay and consumer (embedded backends): the lock is ordered
with the account's other changes, kept by a restarted consumer, and its journal entry
names who asked."""

from __future__ import annotations

from component_support import Rig

from ledgerd.audit import audit
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import (
    AccountLock,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    RejectReason,
)

USER = 1


def change(request_id: str, kind: ChangeType, units: int = 0, actor: str = "") -> ChangeRequest:
    return ChangeRequest(request_id, USER, "USD", kind, units * SCALE, "m", actor=actor)


def test_a_lock_holds_across_a_consumer_restart_and_names_its_actor(rig: Rig) -> None:
    """deposit, lock (swept from the outbox with its actor), withdrawal: REJECTED; a new
    consumer (memory empty, balances from the store) rejects the next withdrawal too and
    applies a deposit; after the unlock a withdrawal applies; the audit is clean."""
    # One acceptance time each: the sweep publishes in acceptance order.
    for now_ms, request in enumerate(
        [change("d1", ChangeType.DEPOSIT, 10),
         change("l1", ChangeType.LOCK_DEBITS, actor="ops-key"),
         change("w1", ChangeType.WITHDRAW, 1)], start=1000,
    ):  # fmt: skip
        rig.accept([request], now_ms)
    rig.relay().run_until_idle()
    first = rig.consumer()
    first.run_until_idle()
    first.close()
    for now_ms, request in enumerate(
        [change("w2", ChangeType.WITHDRAW, 1), change("d2", ChangeType.DEPOSIT, 1),
         change("u1", ChangeType.UNLOCK), change("w3", ChangeType.WITHDRAW, 1)], start=2000,
    ):  # fmt: skip
        rig.accept([request], now_ms)
    rig.relay().run_until_idle()
    rig.consumer().run_until_idle()

    outcomes = rig.store.get_requests(["w1", "w2", "d2", "w3"])
    assert {rid: (s.status, s.reject_reason) for rid, s in outcomes.items()} == {
        "w1": (ChangeStatus.REJECTED, RejectReason.ACCOUNT_LOCKED),
        "w2": (ChangeStatus.REJECTED, RejectReason.ACCOUNT_LOCKED),
        "d2": (ChangeStatus.APPLIED, RejectReason.NONE),
        "w3": (ChangeStatus.APPLIED, RejectReason.NONE),
    }
    journal = rig.store.get_journal(USER, "USD", 0, 10)
    assert [(e.request_id, e.lock_after) for e in journal] == [
        ("d1", AccountLock.NONE), ("l1", AccountLock.DEBITS), ("d2", AccountLock.DEBITS),
        ("u1", AccountLock.NONE), ("w3", AccountLock.NONE),
    ]  # fmt: skip
    assert (journal[1].actor, journal[1].memo) == ("ops-key", "m")
    (balance,) = rig.store.get_balances(USER, "USD")
    assert (balance.available, balance.lock) == (10 * SCALE, AccountLock.NONE)
    assert audit(rig.store).ok
