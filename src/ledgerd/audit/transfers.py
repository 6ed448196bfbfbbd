"""The legs of every transfer, for ``ledgerd audit``.

A transfer T has at most one debit (TRANSFER_OUT or TRANSFER_OUT_FROZEN, request id T,
on the source), one credit (TRANSFER_IN, ``T~in``, on the destination) and one return
(TRANSFER_RETURN, ``T~return``, on the source, only after the credit was refused). The
later legs carry the debit's amount and currency, and name the debit's users the other
way round (the credit) or the same way (the return). A debit with neither a credit nor
a return is *in flight*; one in flight for longer than a threshold is stuck.

A transfer's legs live in the shards of its two users: the book of each shard is merged
before the check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.holds import plain_type
from ledgerd.domain.model import (
    CREDIT_SUFFIX,
    RETURN_SUFFIX,
    ChangeRequest,
    ChangeType,
    JournalEntry,
)

Problem = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Leg:
    """One journaled leg of a transfer: what the checks compare."""

    user_id: int
    counterparty_user_id: int
    currency: str
    amount: int
    applied_at_ms: int

    @classmethod
    def of(cls, entry: JournalEntry) -> Leg:
        return cls(
            entry.user_id,
            entry.counterparty_user_id,
            entry.currency,
            entry.amount,
            entry.applied_at_ms,
        )

    @property
    def money(self) -> str:
        return f"{format_amount(self.amount)} {self.currency}"


@dataclass(slots=True)
class TransferLegs:
    """What the journal and the rejections hold of one transfer."""

    # Tuples: most transfers have one leg of two kinds, and () is shared (memory counts:
    # the audit holds every transfer).
    debits: tuple[Leg, ...] = ()
    credits: tuple[Leg, ...] = ()
    returns: tuple[Leg, ...] = ()
    credit_refused: bool = False  # a rejection of ``T~in``

    @property
    def in_flight(self) -> bool:
        return bool(self.debits) and not self.credits and not self.returns

    def merge(self, other: TransferLegs) -> None:
        self.debits += other.debits
        self.credits += other.credits
        self.returns += other.returns
        self.credit_refused |= other.credit_refused

    def problems(self, transfer_id: str) -> Iterator[str]:
        name = f"transfer {transfer_id}"
        kinds = (("debits", self.debits), ("credits", self.credits), ("returns", self.returns))
        for what, legs in kinds:
            if len(legs) > 1:
                yield f"{name}: {len(legs)} {what}"
        if self.credits and self.returns:
            yield f"{name}: both credited and returned"
        if self.returns and not self.credit_refused:
            yield f"{name}: returned but its credit was never refused"
        if not self.debits:
            if self.credits:
                yield f"{name}: a credit without its debit"
            if self.returns:
                yield f"{name}: a return without its debit"
            if self.credit_refused:
                yield f"{name}: a refused credit without its debit"
            return
        debit = self.debits[0]
        for credit in self.credits:
            yield from _compare(name, "credit", credit, debit, reversed_users=True)
        for returned in self.returns:
            yield from _compare(name, "return", returned, debit, reversed_users=False)


def _compare(name: str, what: str, leg: Leg, debit: Leg, reversed_users: bool) -> Iterator[str]:
    if (leg.currency, leg.amount) != (debit.currency, debit.amount):
        yield f"{name}: {what} of {leg.money} but debit of {debit.money}"
    users = (leg.user_id, leg.counterparty_user_id)
    expected = (debit.user_id, debit.counterparty_user_id)
    if users != (expected[::-1] if reversed_users else expected):
        yield (
            f"{name}: {what} to user {leg.user_id} (counterparty {leg.counterparty_user_id})"
            f" but debit from user {debit.user_id} to user {debit.counterparty_user_id}"
        )


def leg_request_id(kind: ChangeType, transfer_id: str) -> str:
    """The request id a leg of this type of transfer ``transfer_id`` has."""
    if kind is ChangeType.TRANSFER_IN:
        return transfer_id + CREDIT_SUFFIX
    if kind is ChangeType.TRANSFER_RETURN:
        return transfer_id + RETURN_SUFFIX
    return transfer_id


@dataclass
class TransferSummary:
    """The transfers of the store: how many, and those in flight (information)."""

    transfers: int = 0  # with a debit
    in_flight: int = 0
    in_flight_amounts: dict[str, int] = field(default_factory=dict)  # by currency
    stuck: int = 0  # in flight longer than the threshold (also a problem each)

    def as_json(self) -> dict[str, object]:
        return {
            "count": self.transfers,
            "in_flight": self.in_flight,
            "in_flight_amounts": {c: format_amount(a) for c, a in self.in_flight_amounts.items()},
            "stuck": self.stuck,
        }


class TransferBook:
    """Collects the legs of every transfer from journal entries and rejections."""

    def __init__(self) -> None:
        self.transfers: defaultdict[str, TransferLegs] = defaultdict(TransferLegs)
        # The debits found after the scan, by currency: in no snapshot's sums, though
        # their credits are (so the sums put that much less in flight).
        self.found_later: defaultdict[str, int] = defaultdict(int)

    def add_entry(self, entry: JournalEntry, problem: Problem) -> None:
        """Record a journal entry if it is a leg; report a leg that names no transfer, or
        the wrong request id, and a change of another type that names one."""
        # A capture of a hold to another user is that transfer's debit.
        transfer_id, request_id = entry.transfer_id, entry.request_id
        kind = plain_type(entry.type, transfer_id)
        if not kind.is_transfer_leg:
            if transfer_id:
                problem(f"request {request_id}: a {kind.name} names transfer {transfer_id}")
            return
        if not transfer_id:
            problem(f"request {request_id}: a {kind.name} that names no transfer")
            return
        expected = leg_request_id(kind, transfer_id)
        if request_id != expected:
            problem(
                f"request {request_id}: a {kind.name} of transfer {transfer_id}"
                f" with request id {request_id}, not {expected}"
            )
        legs = self.transfers[transfer_id]
        if kind.is_transfer_debit:
            legs.debits += (Leg.of(entry),)
        elif kind is ChangeType.TRANSFER_IN:
            legs.credits += (Leg.of(entry),)
        else:
            legs.returns += (Leg.of(entry),)

    def add_rejection(self, request: ChangeRequest) -> None:
        """Record a refused credit (other rejections change no transfer's legs)."""
        if request.type is ChangeType.TRANSFER_IN and request.transfer_id:
            self.transfers[request.transfer_id].credit_refused = True

    def merge(self, other: TransferBook) -> None:
        for transfer_id, legs in other.transfers.items():
            self.transfers[transfer_id].merge(legs)

    def unmatched(self) -> tuple[set[str], set[str]]:
        """Transfers with a later leg but no debit, and returned ones without a refused
        credit: what a look after separate snapshots (one per shard) may yet find."""
        without_debit = {
            t
            for t, legs in self.transfers.items()
            if not legs.debits and (legs.credits or legs.returns or legs.credit_refused)
        }
        without_refusal = {
            t for t, legs in self.transfers.items() if legs.returns and not legs.credit_refused
        }
        return without_debit, without_refusal

    def add_found_later(self, debits: Mapping[str, JournalEntry], refused: Collection[str]) -> None:
        """Debits (by transfer id) and refused credits (transfer ids) found after the scan:
        committed after their shard's snapshot, before a later leg in a later one."""
        for transfer_id, entry in debits.items():
            debit = plain_type(entry.type, entry.transfer_id).is_transfer_debit
            if debit and entry.transfer_id == transfer_id:
                self.transfers[transfer_id].debits += (Leg.of(entry),)
                self.found_later[entry.currency] += entry.amount
        for transfer_id in refused:
            self.transfers[transfer_id].credit_refused = True

    def in_flight_by_sums(self, summary: TransferSummary) -> dict[str, int]:
        """What the journal's sums must put in flight, by currency, given the check's
        ``summary``: the transfers in flight, less the debits found after the scan."""
        currencies = set(summary.in_flight_amounts) | set(self.found_later)
        return {
            c: summary.in_flight_amounts.get(c, 0) - self.found_later.get(c, 0) for c in currencies
        }

    def check(self, now_ms: int, max_in_flight_ms: int, problem: Problem) -> TransferSummary:
        """Report every broken transfer and every one in flight for longer than
        ``max_in_flight_ms`` at ``now_ms``; count those in flight."""
        summary = TransferSummary()
        amounts: defaultdict[str, int] = defaultdict(int)
        for transfer_id, legs in self.transfers.items():
            for text in legs.problems(transfer_id):
                problem(text)
            if not legs.debits:
                continue
            summary.transfers += 1
            if legs.in_flight:
                debit = legs.debits[0]
                summary.in_flight += 1
                amounts[debit.currency] += debit.amount
                age_ms = now_ms - debit.applied_at_ms
                if age_ms > max_in_flight_ms:
                    summary.stuck += 1
                    problem(
                        f"transfer {transfer_id}: in flight for {age_ms // 1000} s"
                        f" ({debit.money} from user {debit.user_id} to user"
                        f" {debit.counterparty_user_id}: debited, neither credited nor returned)"
                    )
        summary.in_flight_amounts = dict(sorted(amounts.items()))
        return summary
