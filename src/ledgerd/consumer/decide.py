"""Deciding a batch of changes against in-memory balances (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from ledgerd.domain.holds import Hold, HoldApplied, apply_hold_change
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
    # The holds the batch opened or changed, by hold id, as they stand after it.
    holds: dict[str, Hold] = field(default_factory=dict)
    duplicates: int = 0
    applied: int = 0
    rejected: int = 0


def decide_batch(
    changes: Sequence[ChangeRequest],
    already_final: Collection[str],
    balances: Mapping[Account, Balance],
    applied_at_ms: int,
    positions: Sequence[EventPosition] | None = None,
    *,
    holds: Mapping[str, Hold] | None = None,
) -> BatchDecision:
    """Apply changes in order to a copy of ``balances``.

    A change whose request already has an outcome (``already_final``, read by the
    consumer for the messages it could not trust to be first), or that appeared
    earlier in the batch, is a duplicate and skipped. ``balances`` must hold every
    account the changes touch (zeros for new accounts). Consecutive changes of one
    ``atomic_group`` (one message) are one unit: all applied, or all rejected with the
    reason of the first that failed. ``positions`` gives each change's event position.
    ``holds`` must hold every stored hold the batch's hold changes name.
    """
    decision = BatchDecision()
    decided: set[str] = set()
    where = positions if positions is not None else [(0, 0)] * len(changes)
    groups: _Groups | None = None
    index, count = 0, len(changes)
    while index < count:
        change = changes[index]
        if change.atomic_group:
            end = index + 1
            while end < count and changes[end].atomic_group == change.atomic_group:
                end += 1
            groups = groups or _Groups(decision, decided, already_final, balances, applied_at_ms)
            groups.decide(changes[index:end], where[index:end])
            index = end
            continue
        index += 1
        # The hot path: one change, inline.
        if change.request_id in decided or change.request_id in already_final:
            decision.duplicates += 1
            continue
        decided.add(change.request_id)
        account = change.account
        if change.hold_id:
            before = decision.balances.get(account) or balances[account]
            _decide_hold(decision, change, before, holds or {}, where[index - 1], applied_at_ms)
            continue
        result = apply_change(decision.balances.get(account) or balances[account], change)
        if isinstance(result, Applied):
            decision.balances[account] = result.balance
            _journal(decision, change, result.balance, where[index - 1], applied_at_ms)
        else:
            _reject(decision, [change], result.reason)
    return decision


@dataclass(slots=True)
class _Groups:
    """Decides atomic groups within one batch's decision."""

    decision: BatchDecision
    decided: set[str]
    already_final: Collection[str]
    balances: Mapping[Account, Balance]
    applied_at_ms: int

    def decide(self, legs: Sequence[ChangeRequest], positions: Sequence[EventPosition]) -> None:
        """An atomic group's legs: all applied in order, or all rejected."""
        decision = self.decision
        ids = [leg.request_id for leg in legs]
        # The legs of a group are decided together, so one decided leg means all were.
        if any(rid in self.decided or rid in self.already_final for rid in ids):
            decision.duplicates += len(legs)
            return
        self.decided.update(ids)
        after: dict[Account, Balance] = {}
        leg_balances: list[Balance] = []
        for leg in legs:
            account = leg.account
            before = after.get(account) or decision.balances.get(account) or self.balances[account]
            result = apply_change(before, leg)
            if not isinstance(result, Applied):
                _reject(decision, legs, result.reason)
                return
            after[account] = result.balance
            leg_balances.append(result.balance)
        decision.balances.update(after)
        for leg, balance, position in zip(legs, leg_balances, positions, strict=True):
            _journal(decision, leg, balance, position, self.applied_at_ms)


def _decide_hold(  # noqa: PLR0917  # the hot loop's values, passed as they are
    decision: BatchDecision,
    change: ChangeRequest,
    before: Balance,
    holds: Mapping[str, Hold],
    position: EventPosition,
    applied_at_ms: int,
) -> None:
    """A hold change (``ledgerd.domain.holds``): its account, its hold and its entry."""
    account = change.account
    hold_id = change.hold_id
    hold = decision.holds.get(hold_id) or holds.get(hold_id)
    result = apply_hold_change(before, hold, change, applied_at_ms)
    if not isinstance(result, HoldApplied):
        _reject(decision, [change], result.reason)
        return
    decision.balances[account] = result.balance
    decision.holds[hold_id] = result.hold
    balance = result.balance
    decision.journal.append(
        JournalEntry(
            change.request_id, change.user_id, change.currency, change.type, result.amount,
            balance.available, balance.frozen, balance.version, applied_at_ms, change.memo,
            change.transfer_id, change.counterparty_user_id, position[0], position[1],
            change.actor, balance.lock, hold_id,
        )
    )  # fmt: skip
    decision.outcomes.append(RequestOutcome(change.request_id, ChangeStatus.APPLIED))
    decision.applied += 1
    if change.transfer_id:  # a capture to another user: the credit, as a transfer's
        decision.follow_ups.append(change.credit())


def _journal(
    decision: BatchDecision,
    leg: ChangeRequest,
    balance: Balance,
    position: EventPosition,
    applied_at_ms: int,
) -> None:
    """The applied change's entry, with the amounts and version right after it."""
    decision.journal.append(
        JournalEntry(
            leg.request_id, leg.user_id, leg.currency, leg.type, leg.amount,
            balance.available, balance.frozen, balance.version, applied_at_ms, leg.memo,
            leg.transfer_id, leg.counterparty_user_id, position[0], position[1], leg.actor,
            balance.lock,
        )
    )  # fmt: skip
    decision.outcomes.append(RequestOutcome(leg.request_id, ChangeStatus.APPLIED))
    decision.applied += 1
    if leg.transfer_id and leg.type.is_transfer_debit:
        decision.follow_ups.append(leg.credit())


def _reject(decision: BatchDecision, legs: Sequence[ChangeRequest], reason: RejectReason) -> None:
    for leg in legs:
        decision.rejections.append(Rejection(leg, reason))
        decision.outcomes.append(RequestOutcome(leg.request_id, ChangeStatus.REJECTED, reason))
        decision.rejected += 1
    leg = legs[0]  # a transfer leg is always alone in its unit
    if leg.type is ChangeType.TRANSFER_IN:
        decision.follow_ups.append(leg.returned())
    elif leg.type is ChangeType.TRANSFER_RETURN:
        decision.stuck_returns.append(leg)
