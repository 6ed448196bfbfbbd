"""Conservation of money, per currency, for ``ledgerd audit``.

Money enters only by DEPOSIT and leaves only by WITHDRAW and SPEND_FROZEN; FREEZE and
UNFREEZE move it inside an account; a transfer moves it between accounts, and between
its debit and its credit (or its return) it is in neither: *in flight*. So over the
whole store, per currency:

    Σ balances (available + frozen) == deposits - withdrawals - spent - in flight
    in flight = Σ TRANSFER_OUT(_FROZEN) - Σ TRANSFER_IN - Σ TRANSFER_RETURN

The sums are taken by change type, not through the rules (``domain.rules``) the
per-account replay uses: a rule that created or destroyed money would replay faithfully
and still break this equation. And the money in flight by these sums must be what the
transfers' legs leave in flight (``audit.transfers``): a credit applied twice leaves
the equation whole, with less than nothing in flight. Exact: amounts are scaled integers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

from ledgerd.domain.amounts import format_amount
from ledgerd.domain.holds import plain_type
from ledgerd.domain.model import Balance, ChangeType, JournalEntry


@dataclass
class CurrencyTotals:
    """One currency's sums over the balances and over the journal, by change type."""

    balances: int = 0  # Σ available + frozen
    deposits: int = 0
    withdrawals: int = 0
    spent: int = 0  # SPEND_FROZEN
    sent: int = 0  # TRANSFER_OUT and TRANSFER_OUT_FROZEN: the debits
    received: int = 0  # TRANSFER_IN: the credits
    returned: int = 0  # TRANSFER_RETURN: credits refused, back at the source

    @property
    def in_flight(self) -> int:
        """Debited and neither credited nor returned yet."""
        return self.sent - self.received - self.returned

    @property
    def expected_balances(self) -> int:
        """What the balances must add up to, from the journal."""
        return self.deposits - self.withdrawals - self.spent - self.in_flight

    def add(self, other: CurrencyTotals) -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_json(self) -> dict[str, str]:
        """Every sum and the money in flight, as decimal text."""
        sums = {name: format_amount(getattr(self, name)) for name in _SUMS}
        return {**sums, "in_flight": format_amount(self.in_flight)}


_SUMS = tuple(f.name for f in fields(CurrencyTotals))


class Conservation:
    """Adds up balances and journal entries per currency, then checks the equation."""

    def __init__(self) -> None:
        self.currencies: defaultdict[str, CurrencyTotals] = defaultdict(CurrencyTotals)

    def add_entry(self, entry: JournalEntry) -> None:
        totals = self.currencies[entry.currency]
        kind, amount = plain_type(entry.type, entry.transfer_id), entry.amount
        if kind is ChangeType.DEPOSIT:
            totals.deposits += amount
        elif kind is ChangeType.WITHDRAW:
            totals.withdrawals += amount
        elif kind is ChangeType.SPEND_FROZEN:
            totals.spent += amount
        elif kind.is_transfer_debit:
            totals.sent += amount
        elif kind is ChangeType.TRANSFER_IN:
            totals.received += amount
        elif kind is ChangeType.TRANSFER_RETURN:
            totals.returned += amount
        # FREEZE and UNFREEZE keep the account's total.

    def add_balance(self, balance: Balance) -> None:
        self.currencies[balance.currency].balances += balance.available + balance.frozen

    def merge(self, other: Conservation) -> None:
        for currency, totals in other.currencies.items():
            self.currencies[currency].add(totals)

    def problems(self) -> Iterator[str]:
        for currency, totals in sorted(self.currencies.items()):
            if totals.balances != totals.expected_balances:
                yield (
                    f"{currency}: balances add up to {format_amount(totals.balances)} but"
                    f" deposits {format_amount(totals.deposits)} - withdrawals"
                    f" {format_amount(totals.withdrawals)} - spent {format_amount(totals.spent)}"
                    f" - in flight {format_amount(totals.in_flight)}"
                    f" = {format_amount(totals.expected_balances)}"
                )

    def in_flight_problems(self, by_transfers: Mapping[str, int]) -> Iterator[str]:
        """Where the money in flight by the sums differs from ``by_transfers`` (by
        currency: what the transfers' legs leave in flight)."""
        for currency in sorted(set(self.currencies) | set(by_transfers)):
            totals = self.currencies[currency]
            expected = by_transfers.get(currency, 0)
            if totals.in_flight != expected:
                yield (
                    f"{currency}: {format_amount(totals.in_flight)} in flight by the journal"
                    f" (sent {format_amount(totals.sent)} - received"
                    f" {format_amount(totals.received)} - returned"
                    f" {format_amount(totals.returned)}) but {format_amount(expected)} by"
                    " the transfers' legs"
                )
