"""Deciding a batch of changes against in-memory balances (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
    RequestOutcome,
)
from ledgerd.domain.rules import Applied, apply_change

# Where a change's journal entry stands in its partition's event stream: (partition, seq).
EventPosition = tuple[int, int]


@dataclass(slots=True)
class BatchDecision:
    """What a batch changes: final balances of touched accounts, journal, rejections,
    the outcome of every request decided, and the transfer legs it sends on."""

    balances: dict[Account, Balance] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    outcomes: list[RequestOutcome] = field(default_factory=list)
    # A transfer's credit for each applied debit, its return for each refused credit.
    follow_ups: list[ChangeRequest] = field(default_factory=list)
    # Returns refused too (the source's balance would overflow): the amount stays in flight.
    stuck_returns: list[ChangeRequest] = field(default_factory=list)
    duplicates: int = 0
    applied: int = 0
    rejected: int = 0


def decide_batch(
    changes: Sequence[ChangeRequest],
    already_final: Collection[str],
    balances: Mapping[Account, Balance],
    applied_at_ms: int,
    positions: Sequence[EventPosition] | None = None,
) -> BatchDecision:
    """Apply changes in order to a copy of ``balances``.

    A change whose request already has an outcome (``already_final``, read by the
    consumer for the messages it could not trust to be first), or that appeared
    earlier in the batch, is a duplicate and skipped. ``balances`` must hold every
    account the changes touch (zeros for new accounts). Consecutive changes of one
    ``atomic_group`` (one message) are one unit: all applied, or all rejected with the
    reason of the first that failed. ``positions`` gives each change's event position.
    """
    decider = _Decider(already_final, balances, applied_at_ms)
    start = 0
    while start < len(changes):
        group = changes[start].atomic_group
        end = start + 1
        if group:
            while end < len(changes) and changes[end].atomic_group == group:
                end += 1
        where = positions[start:end] if positions is not None else [(0, 0)] * (end - start)
        decider.decide_unit(changes[start:end], where)
        start = end
    return decider.decision


class _Decider:
    def __init__(
        self,
        already_final: Collection[str],
        balances: Mapping[Account, Balance],
        applied_at_ms: int,
    ) -> None:
        self.decision = BatchDecision()
        self._already_final = already_final
        self._balances = balances
        self._applied_at_ms = applied_at_ms
        self._decided: set[str] = set()

    def decide_unit(
        self, legs: Sequence[ChangeRequest], positions: Sequence[EventPosition]
    ) -> None:
        decision = self.decision
        ids = [leg.request_id for leg in legs]
        # The legs of a group are decided together, so one decided leg means all were.
        if any(rid in self._decided or rid in self._already_final for rid in ids):
            decision.duplicates += len(legs)
            return
        self._decided.update(ids)
        after: dict[Account, Balance] = {}
        leg_balances: list[Balance] = []
        for leg in legs:
            account = leg.account
            before = after.get(account) or decision.balances.get(account) or self._balances[account]
            result = apply_change(before, leg)
            if not isinstance(result, Applied):
                self._reject(legs, result.reason)
                return
            after[account] = result.balance
            leg_balances.append(result.balance)
        decision.balances.update(after)
        for leg, balance, (partition, seq) in zip(legs, leg_balances, positions, strict=True):
            self._journal(leg, balance, partition, seq)

    def _journal(self, leg: ChangeRequest, balance: Balance, partition: int, seq: int) -> None:
        """The applied leg's entry, with the amounts and version right after it."""
        decision = self.decision
        decision.journal.append(
            JournalEntry(
                request_id=leg.request_id,
                user_id=leg.user_id,
                currency=leg.currency,
                type=leg.type,
                amount=leg.amount,
                available_after=balance.available,
                frozen_after=balance.frozen,
                version=balance.version,
                applied_at_ms=self._applied_at_ms,
                memo=leg.memo,
                transfer_id=leg.transfer_id,
                counterparty_user_id=leg.counterparty_user_id,
                partition=partition,
                event_seq=seq,
            )
        )
        decision.outcomes.append(RequestOutcome(leg.request_id, ChangeStatus.APPLIED))
        decision.applied += 1
        if leg.type.is_transfer_debit:
            decision.follow_ups.append(leg.credit())

    def _reject(self, legs: Sequence[ChangeRequest], reason: RejectReason) -> None:
        decision = self.decision
        for leg in legs:
            decision.rejections.append(Rejection(leg, reason))
            decision.outcomes.append(RequestOutcome(leg.request_id, ChangeStatus.REJECTED, reason))
            decision.rejected += 1
        leg = legs[0]  # a transfer leg is always alone in its unit
        if leg.type is ChangeType.TRANSFER_IN:
            decision.follow_ups.append(leg.returned())
        elif leg.type is ChangeType.TRANSFER_RETURN:
            decision.stuck_returns.append(leg)
