"""Which requests of a group commit are new, duplicates, or conflicts (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledgerd.domain.model import ChangeRequest, ChangeStatus, StoredRequest
from ledgerd.errors import RequestConflict


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The answer for one accepted request: its stored status, and whether it was a retry."""

    stored: StoredRequest
    duplicate: bool


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """What one caller's group gets: answers in order, or the conflict that voids it."""

    acceptances: Sequence[Acceptance] = ()
    conflict: RequestConflict | None = None


def plan_acceptance(
    groups: Sequence[Sequence[ChangeRequest]], stored: Mapping[str, StoredRequest]
) -> tuple[list[ChangeRequest], list[GroupPlan]]:
    """Decide each group against what is stored and what earlier groups add.

    A group (one RPC) is all or nothing: if any of its requests reuses a
    request_id with different fields, none of it is inserted.
    """
    known: dict[str, StoredRequest] = dict(stored)
    to_insert: list[ChangeRequest] = []
    plans: list[GroupPlan] = []
    pending = ChangeStatus.PENDING
    for group in groups:
        if len(group) == 1 and group[0].request_id not in known:
            # The common case (one ChangeBalance, a new id), decided without the general
            # path's per-group collections: it runs on the acceptor thread per change.
            request = group[0]
            accepted = StoredRequest(request, pending)
            known[request.request_id] = accepted
            to_insert.append(request)
            plans.append(GroupPlan([Acceptance(accepted, False)]))
            continue
        plan, added = _plan_group(group, known)
        plans.append(plan)
        for request in added:
            known[request.request_id] = StoredRequest(request, pending)
        to_insert += added
    return to_insert, plans


def _plan_group(
    group: Sequence[ChangeRequest], known: Mapping[str, StoredRequest]
) -> tuple[GroupPlan, list[ChangeRequest]]:
    added: dict[str, ChangeRequest] = {}
    acceptances: list[Acceptance] = []
    for index, request in enumerate(group):
        earlier = known.get(request.request_id)
        if earlier is None and request.request_id in added:
            earlier = StoredRequest(added[request.request_id], ChangeStatus.PENDING)
        if earlier is None:
            added[request.request_id] = request
            acceptances.append(Acceptance(StoredRequest(request, ChangeStatus.PENDING), False))
        elif earlier.request.same_fields(request):
            acceptances.append(Acceptance(earlier, True))
        else:
            location = "request_id" if len(group) == 1 else f"changes[{index}].request_id"
            return GroupPlan(conflict=RequestConflict(request.request_id, location)), []
    if added and len(added) < len(group) and group[0].atomic_group:
        # An atomic batch is new as a whole, or a retry of one whole batch: storing only
        # its new legs would apply them without the others.
        index = next(i for i, r in enumerate(group) if r.request_id not in added)
        conflict = RequestConflict(group[index].request_id, f"changes[{index}].request_id")
        return GroupPlan(conflict=conflict), []
    return GroupPlan(acceptances=acceptances), list(added.values())
