"""Deciding a batch of changes against in-memory balances (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    Rejection,
    RequestOutcome,
)
from ledgerd.domain.rules import Applied, apply_change


@dataclass(slots=True)
class BatchDecision:
    """What a batch changes: final balances of touched accounts, journal, rejections,
    and the outcome of every request decided."""

    balances: dict[Account, Balance] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    outcomes: list[RequestOutcome] = field(default_factory=list)
    duplicates: int = 0
    applied: int = 0
    rejected: int = 0


def decide_batch(
    changes: Sequence[ChangeRequest],
    already_final: Collection[str],
    balances: Mapping[Account, Balance],
    applied_at_ms: int,
) -> BatchDecision:
    """Apply changes in order to a copy of ``balances``.

    A change whose request already has an outcome (``already_final``, read by the
    consumer for the messages it could not trust to be first), or that appeared
    earlier in the batch, is a duplicate and skipped. ``balances`` must hold every
    account the changes touch (zeros for new accounts).
    """
    decision = BatchDecision()
    decided: set[str] = set()
    for change in changes:
        if change.request_id in decided or change.request_id in already_final:
            decision.duplicates += 1
            continue
        decided.add(change.request_id)
        account = change.account
        before = decision.balances.get(account) or balances[account]
        result = apply_change(before, change)
        if isinstance(result, Applied):
            after = result.balance
            decision.balances[account] = after
            decision.journal.append(
                JournalEntry(
                    request_id=change.request_id,
                    user_id=change.user_id,
                    currency=change.currency,
                    type=change.type,
                    amount=change.amount,
                    available_after=after.available,
                    frozen_after=after.frozen,
                    version=after.version,
                    applied_at_ms=applied_at_ms,
                    memo=change.memo,
                )
            )
            decision.outcomes.append(RequestOutcome(change.request_id, ChangeStatus.APPLIED))
            decision.applied += 1
        else:
            decision.rejections.append(Rejection(change, result.reason))
            decision.outcomes.append(
                RequestOutcome(change.request_id, ChangeStatus.REJECTED, result.reason)
            )
            decision.rejected += 1
    return decision
