"""Conservation per currency: balances add up to deposits - withdrawals - spent - in flight."""

from __future__ import annotations

from audit_journal import DESTINATION, SOURCE, credit_of, debit, entry, return_of

from ledgerd.audit.money import Conservation
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import Balance, ChangeType, JournalEntry


def conservation(entries: list[JournalEntry], balances: list[Balance]) -> Conservation:
    money = Conservation()
    for e in entries:
        money.add_entry(e)
    for b in balances:
        money.add_balance(b)
    return money


def usd(user: int, available: int, frozen: int = 0) -> Balance:
    return Balance(user, "USD", available * SCALE, frozen * SCALE, 1)


def test_every_kind_of_change_balances() -> None:
    """Deposit 100, freeze 30, spend 10 frozen, unfreeze 5, withdraw 20, transfer 15 out
    of frozen (credited) and 5 of available (returned): 70 left in SOURCE, 15 credited."""
    transferred, returned = debit("T1", 15, frozen=True), debit("T2", 5)
    entries = [
        entry(ChangeType.DEPOSIT, 100),
        entry(ChangeType.FREEZE, 30),
        entry(ChangeType.SPEND_FROZEN, 10),
        entry(ChangeType.UNFREEZE, 5),
        entry(ChangeType.WITHDRAW, 20),
        transferred,
        credit_of(transferred),
        returned,
        return_of(returned),
    ]
    # SOURCE: available 100-30+5-20-5+5 = 55, frozen 30-10-5-15 = 0; DESTINATION: 15
    money = conservation(entries, [usd(SOURCE, 55), usd(DESTINATION, 15)])
    assert list(money.problems()) == []
    totals = money.currencies["USD"]
    assert (totals.deposits, totals.withdrawals, totals.spent) == (
        100 * SCALE, 20 * SCALE, 10 * SCALE
    )  # fmt: skip
    assert (totals.sent, totals.received, totals.returned, totals.in_flight) == (
        20 * SCALE, 15 * SCALE, 5 * SCALE, 0
    )  # fmt: skip


def test_money_in_flight_is_counted_on_neither_side() -> None:
    """A debit not credited yet: balances are short by its amount, which is in flight."""
    money = conservation([entry(ChangeType.DEPOSIT, 10), debit("T", 4)], [usd(SOURCE, 6)])
    assert list(money.problems()) == []
    assert money.currencies["USD"].in_flight == 4 * SCALE


def test_created_money_is_a_finding() -> None:
    """A balance above what the journal brought in (a rule that created money)."""
    money = conservation([entry(ChangeType.DEPOSIT, 10)], [usd(SOURCE, 10), usd(DESTINATION, 1)])
    assert list(money.problems()) == [
        "USD: balances add up to 11 but deposits 10 - withdrawals 0 - spent 0 - in flight 0 = 10"
    ]


def test_a_credit_applied_twice_leaves_less_than_nothing_in_flight() -> None:
    """The second credit is money from nowhere: the equation holds with -3 in flight,
    which the transfers' legs (nothing in flight) contradict."""
    transfer = debit("T", 3)
    entries = [entry(ChangeType.DEPOSIT, 10), transfer, credit_of(transfer), credit_of(transfer)]
    money = conservation(entries, [usd(SOURCE, 7), usd(DESTINATION, 6)])
    assert list(money.problems()) == []
    assert list(money.in_flight_problems({"USD": 0})) == [
        "USD: -3 in flight by the journal (sent 3 - received 6 - returned 0) but 0 by the"
        " transfers' legs"
    ]


def test_money_in_flight_agrees_with_the_transfers() -> None:
    """Per currency, including one the transfers name and the journal does not."""
    money = conservation([entry(ChangeType.DEPOSIT, 10), debit("T", 4)], [usd(SOURCE, 6)])
    assert list(money.in_flight_problems({"USD": 4 * SCALE})) == []
    assert [p.split(":")[0] for p in money.in_flight_problems({"USD": 4 * SCALE, "EUR": 1})] == [
        "EUR"
    ]


def test_currencies_are_checked_each_on_its_own() -> None:
    """Money of one currency does not make up for another's."""
    entries = [
        entry(ChangeType.DEPOSIT, 10, currency="USD"),
        entry(ChangeType.DEPOSIT, 10, currency="EUR"),
    ]
    balances = [usd(SOURCE, 11), Balance(SOURCE, "EUR", 9 * SCALE, 0, 1)]
    problems = list(conservation(entries, balances).problems())
    assert [p.split(":")[0] for p in problems] == ["EUR", "USD"]


def test_amounts_are_exact_to_the_last_scaled_unit() -> None:
    """One scaled unit (10**-18) off is a finding: no float rounding."""
    deposit = JournalEntry("r", SOURCE, "USD", ChangeType.DEPOSIT, 10**20 * SCALE + 1, 0, 0, 1, 0)
    exact = conservation([deposit], [Balance(SOURCE, "USD", 10**20 * SCALE + 1, 0, 1)])
    off = conservation([deposit], [Balance(SOURCE, "USD", 10**20 * SCALE, 0, 1)])
    assert list(exact.problems()) == []
    assert len(list(off.problems())) == 1


def test_the_sums_of_two_shards_merge() -> None:
    """The debit in one shard, the credit in the other: merged, nothing is in flight."""
    transfer = debit("T", 4)
    shard_0 = conservation([entry(ChangeType.DEPOSIT, 10), transfer], [usd(SOURCE, 6)])
    shard_1 = conservation([credit_of(transfer)], [usd(DESTINATION, 4)])
    total = Conservation()
    total.merge(shard_0)
    total.merge(shard_1)
    assert list(total.problems()) == []
    assert total.currencies["USD"].as_json() == {
        "balances": "10", "deposits": "10", "withdrawals": "0", "spent": "0", "sent": "4",
        "received": "4", "returned": "0", "in_flight": "0",
    }  # fmt: skip
