"""Transfers, spending frozen funds and atomic groups through relay and consumer (embedded)."""

from __future__ import annotations

import dataclasses

from component_support import Rig

from ledgerd.audit import audit
from ledgerd.consumer.worker import BatchConsumer
from ledgerd.domain.amounts import MAX_SCALED, SCALE
from ledgerd.domain.model import (
    LEGS_PER_MESSAGE,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    RejectReason,
)
from ledgerd.outbox.relay import Relay
from ledgerd.transfers import read_transfer


def deposit(request_id: str, user_id: int, amount: int, currency: str = "USD") -> ChangeRequest:
    return ChangeRequest(request_id, user_id, currency, ChangeType.DEPOSIT, amount)


def transfer(
    transfer_id: str, source: int, destination: int, amount: int, *, from_frozen: bool = False
) -> ChangeRequest:
    kind = ChangeType.TRANSFER_OUT_FROZEN if from_frozen else ChangeType.TRANSFER_OUT
    return ChangeRequest(transfer_id, source, "USD", kind, amount, "pay", transfer_id, destination)


def atomic(*legs: ChangeRequest) -> list[ChangeRequest]:
    group = legs[0].request_id
    return [
        dataclasses.replace(leg, atomic_group=group, atomic_leg=index)
        for index, leg in enumerate(legs)
    ]


class Pipeline:
    """A relay and a consumer that hands it the transfer legs it sends on."""

    def __init__(self, rig: Rig, *, send_on: bool = True) -> None:
        self.rig = rig
        self.relay: Relay = rig.relay(sweep_min_age_s=0.0)
        # As app.py wires it: the consumer hands a transfer's next legs to its relay.
        self.consumer: BatchConsumer = rig.consumer(self.relay.hand_off if send_on else None)

    def submit(self, requests: list[ChangeRequest], now_ms: int = 1000) -> None:
        self.rig.accept(requests, now_ms)
        self.relay.hand_off(requests, now_ms)

    def settle(self, rounds: int = 4) -> None:
        """Publish and apply until a transfer's later legs have gone round too."""
        for _ in range(rounds):
            self.relay.run_until_idle()
            self.consumer.run_until_idle()

    def available(self, user_id: int, currency: str = "USD") -> int:
        (balance,) = self.rig.store.get_balances(user_id, currency) or [None]
        return balance.available if balance is not None else 0


def test_a_transfer_moves_funds_once_and_names_itself_in_both_journals(rig: Rig) -> None:
    """The debit applies on the source, its credit on the destination; both entries name the
    transfer and the other user; the transfer reads APPLIED; no money is made or lost."""
    pipeline = Pipeline(rig)
    pipeline.submit([deposit("d1", 1, 10 * SCALE)])
    pipeline.submit([transfer("t1", 1, 2, 4 * SCALE)])
    pipeline.settle()
    assert (pipeline.available(1), pipeline.available(2)) == (6 * SCALE, 4 * SCALE)
    (debit,) = [e for e in rig.store.get_journal(1, "USD", 0, 10) if e.transfer_id]
    (credit,) = rig.store.get_journal(2, "USD", 0, 10)
    assert (debit.request_id, debit.type, debit.counterparty_user_id) == (
        "t1", ChangeType.TRANSFER_OUT, 2,
    )  # fmt: skip
    assert (credit.request_id, credit.type, credit.transfer_id, credit.counterparty_user_id) == (
        "t1~in", ChangeType.TRANSFER_IN, "t1", 1,
    )  # fmt: skip
    answer = read_transfer(rig.store, "t1")
    assert answer is not None and answer.status is ChangeStatus.APPLIED and answer.debited
    assert answer.to_balance is not None and answer.to_balance.available == 4 * SCALE
    # Delivered, the credit's outbox row has done its work.
    assert "t1~in" not in {s.request.request_id for s in rig.store.scan_requests(None, 100)}
    assert audit(rig.store).ok


def test_a_transfer_short_of_funds_is_rejected_and_sends_no_credit(rig: Rig) -> None:
    """A debit beyond available is REJECTED INSUFFICIENT_AVAILABLE; nothing reaches the
    destination."""
    pipeline = Pipeline(rig)
    pipeline.submit([deposit("d1", 1, SCALE)])
    pipeline.submit([transfer("t1", 1, 2, 2 * SCALE)])
    pipeline.settle()
    answer = read_transfer(rig.store, "t1")
    assert answer is not None
    assert (answer.status, answer.reject_reason, answer.debited) == (
        ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_AVAILABLE, False,
    )  # fmt: skip
    assert rig.store.get_balances(2, None) == []


def test_a_transfer_from_frozen_spends_the_hold(rig: Rig) -> None:
    """from_frozen takes the amount out of frozen, and refuses beyond it."""
    pipeline = Pipeline(rig)
    pipeline.submit([deposit("d1", 1, 10 * SCALE)])
    pipeline.submit([ChangeRequest("f1", 1, "USD", ChangeType.FREEZE, 3 * SCALE)])
    pipeline.submit([transfer("t1", 1, 2, 2 * SCALE, from_frozen=True)])
    pipeline.submit([transfer("t2", 1, 2, 2 * SCALE, from_frozen=True)])
    pipeline.settle()
    (source,) = rig.store.get_balances(1, "USD")
    assert (source.available, source.frozen) == (7 * SCALE, SCALE)
    assert pipeline.available(2) == 2 * SCALE
    refused = read_transfer(rig.store, "t2")
    assert refused is not None and refused.reject_reason is RejectReason.INSUFFICIENT_FROZEN


def test_a_credit_that_would_overflow_returns_the_amount_to_the_source(rig: Rig) -> None:
    """The destination cannot hold more: the credit is refused, the return gives the source
    its amount back, and the transfer ends REJECTED AMOUNT_OVERFLOW."""
    pipeline = Pipeline(rig)
    pipeline.submit([deposit("d1", 1, 5 * SCALE), deposit("d2", 2, MAX_SCALED)])
    pipeline.submit([transfer("t1", 1, 2, SCALE)])
    pipeline.settle(rounds=6)
    assert (pipeline.available(1), pipeline.available(2)) == (5 * SCALE, MAX_SCALED)
    answer = read_transfer(rig.store, "t1")
    assert answer is not None
    assert (answer.status, answer.reject_reason, answer.debited) == (
        ChangeStatus.REJECTED, RejectReason.AMOUNT_OVERFLOW, True,
    )  # fmt: skip
    types = [e.type for e in rig.store.get_journal(1, "USD", 0, 10)]
    assert types == [ChangeType.DEPOSIT, ChangeType.TRANSFER_OUT, ChangeType.TRANSFER_RETURN]


def test_credits_left_in_the_outbox_by_a_crash_are_swept_and_applied_once(rig: Rig) -> None:
    """A consumer that dies before handing the credit on leaves it in the outbox: the sweep
    publishes it (resent), and a second copy changes nothing."""
    pipeline = Pipeline(rig, send_on=False)
    pipeline.submit([deposit("d1", 1, 10 * SCALE)])
    pipeline.submit([transfer("t1", 1, 2, 4 * SCALE)])
    pipeline.settle()
    pipeline.relay.run_until_idle(sweep_min_age_s=0.0)  # publishes it once more
    pipeline.consumer.run_until_idle()
    assert (pipeline.available(1), pipeline.available(2)) == (6 * SCALE, 4 * SCALE)
    assert [e.request_id for e in rig.store.get_journal(2, "USD", 0, 10)] == ["t1~in"]
    assert audit(rig.store).ok


def test_an_atomic_group_applies_every_leg_in_order(rig: Rig) -> None:
    """A settlement (spend frozen USD, credit BTC) applies both legs, each with its own
    entry, the amounts right after it, and consecutive event positions."""
    pipeline = Pipeline(rig)
    pipeline.submit([deposit("d1", 1, 10 * SCALE)])
    pipeline.submit([ChangeRequest("f1", 1, "USD", ChangeType.FREEZE, 6 * SCALE)])
    legs = atomic(
        ChangeRequest("s1", 1, "USD", ChangeType.SPEND_FROZEN, 5 * SCALE),
        ChangeRequest("s2", 1, "BTC", ChangeType.DEPOSIT, SCALE),
        ChangeRequest("s3", 1, "USD", ChangeType.UNFREEZE, SCALE),
    )
    pipeline.submit(legs)
    pipeline.settle()
    usd = rig.store.get_journal(1, "USD", 0, 10)
    assert [(e.request_id, e.available_after, e.frozen_after, e.version) for e in usd[2:]] == [
        ("s1", 4 * SCALE, SCALE, 3),
        ("s3", 5 * SCALE, 0, 4),
    ]
    (btc,) = rig.store.get_journal(1, "BTC", 0, 10)
    seqs = {e.request_id: e.event_seq for e in [*usd, btc]}
    assert seqs["s2"] == seqs["s1"] + 1 and seqs["s3"] == seqs["s1"] + 2
    assert (seqs["s1"] - 1) % LEGS_PER_MESSAGE == 0  # leg 0 of its message


def test_an_atomic_group_with_one_failing_leg_applies_nothing(rig: Rig) -> None:
    """When a leg would be rejected, every leg is REJECTED with that leg's reason and no
    balance moves."""
    pipeline = Pipeline(rig)
    pipeline.submit([deposit("d1", 1, 10 * SCALE)])
    legs = atomic(
        ChangeRequest("s1", 1, "BTC", ChangeType.DEPOSIT, SCALE),
        ChangeRequest("s2", 1, "USD", ChangeType.SPEND_FROZEN, SCALE),
    )
    pipeline.submit(legs)
    pipeline.settle()
    stored = rig.store.get_requests(["s1", "s2"])
    assert {(s.status, s.reject_reason) for s in stored.values()} == {
        (ChangeStatus.REJECTED, RejectReason.INSUFFICIENT_FROZEN)
    }
    assert rig.store.get_balances(1, "BTC") == []
    assert pipeline.available(1) == 10 * SCALE
