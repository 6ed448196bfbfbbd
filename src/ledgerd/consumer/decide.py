"""Deciding a batch of changes against in-memory balances (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ledgerd.domain.model import (
    Account,
    Balance,
    ChangeRequest,
    ChangeStatus,
    JournalEntry,
    RequestOutcome,
    StoredRequest,
)
from ledgerd.domain.rules import Applied, apply_change


@dataclass(slots=True)
class BatchDecision:
    """What a batch changes: final balances of touched accounts, journal, outcomes."""

    balances: dict[Account, Balance] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)
    outcomes: list[RequestOutcome] = field(default_factory=list)
    duplicates: int = 0
    unknown: list[ChangeRequest] = field(default_factory=list)
    applied: int = 0
    rejected: int = 0


def decide_batch(
    changes: Sequence[ChangeRequest],
    stored: Mapping[str, StoredRequest],
    balances: Mapping[Account, Balance],
    applied_at_ms: int,
) -> BatchDecision:
    """Apply changes in order to a copy of ``balances``.

    ``stored`` holds the outbox rows of the batch's request ids: a change whose
    row already has an outcome, or that appeared earlier in the batch, is a
    duplicate and skipped; one with no matching row never came through the
    outbox and is returned in ``unknown``. ``balances`` must hold every
    account the changes touch (zeros for new accounts).
    """
    decision = BatchDecision()
    decided: set[str] = set()
    for change in changes:
        row = stored.get(change.request_id)
        if row is None or not row.request.same_fields(change):
            decision.unknown.append(change)
            continue
        if row.status.is_final or change.request_id in decided:
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
            decision.outcomes.append(
                RequestOutcome(change.request_id, ChangeStatus.REJECTED, result.reason)
            )
            decision.rejected += 1
    return decision
