"""The legs of every transfer: one debit, at most one credit or (after a refused credit)
one return, matching the debit; those in flight counted, stuck ones reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from audit_journal import (
    APPLIED_AT_MS,
    DESTINATION,
    SOURCE,
    credit_of,
    debit,
    entry,
    refused_credit_of,
    return_of,
)

from ledgerd.audit.transfers import TransferBook, TransferSummary
from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import ChangeRequest, ChangeType, JournalEntry

MAX_IN_FLIGHT_MS = 300_000


def check(
    entries: list[JournalEntry],
    refused: Sequence[ChangeRequest] = (),
    now_ms: int = APPLIED_AT_MS + 1000,
) -> tuple[list[str], TransferSummary]:
    """Every finding (when adding the entries, then checking) and the summary."""
    found: list[str] = []
    book = TransferBook()
    for e in entries:
        book.add_entry(e, found.append)
    for request in refused:
        book.add_rejection(request)
    summary = book.check(now_ms, MAX_IN_FLIGHT_MS, found.append)
    return found, summary


def test_a_credited_transfer_is_complete() -> None:
    """Debit and credit match: no finding, nothing in flight."""
    transfer = debit("T", 5)
    found, summary = check([transfer, credit_of(transfer)])
    assert found == []
    assert (summary.transfers, summary.in_flight, summary.in_flight_amounts) == (1, 0, {})


def test_a_refused_and_returned_transfer_is_complete() -> None:
    """Debit from frozen, credit refused (a rejection of T~in), return to the source."""
    transfer = debit("T", 5, frozen=True)
    found, summary = check([transfer, return_of(transfer)], [refused_credit_of(transfer)])
    assert found == []
    assert (summary.transfers, summary.in_flight) == (1, 0)


def test_debits_without_a_later_leg_are_in_flight_by_currency() -> None:
    """Information, not a finding: count and amount per currency."""
    entries = [debit("T1", 5), debit("T2", 2), debit("T3", 1, currency="EUR")]
    found, summary = check(entries)
    assert found == []
    assert summary.in_flight == 3
    assert summary.in_flight_amounts == {"EUR": SCALE, "USD": 7 * SCALE}
    assert summary.as_json() == {
        "count": 3, "in_flight": 3, "in_flight_amounts": {"EUR": "1", "USD": "7"}, "stuck": 0
    }  # fmt: skip


def test_a_refused_credit_not_yet_returned_is_in_flight() -> None:
    """The return is on its way: the amount is in neither balance."""
    transfer = debit("T", 5)
    found, summary = check([transfer], [refused_credit_of(transfer)])
    assert found == []
    assert summary.in_flight == 1


def test_a_transfer_in_flight_past_the_threshold_is_stuck() -> None:
    """Older than the threshold: a finding; exactly at it: not yet."""
    at_threshold = APPLIED_AT_MS + MAX_IN_FLIGHT_MS
    found, summary = check([debit("T", 5)], now_ms=at_threshold)
    assert (found, summary.stuck) == ([], 0)
    found, summary = check([debit("T", 5)], now_ms=at_threshold + 1)
    assert found == [
        f"transfer T: in flight for 300 s (5 USD from user {SOURCE} to user {DESTINATION}:"
        " debited, neither credited nor returned)"
    ]
    assert (summary.in_flight, summary.stuck) == (1, 1)


def test_a_leg_twice_is_a_finding() -> None:
    """At most one debit, one credit, one return per transfer."""
    transfer = debit("T", 5)
    found, _ = check([transfer, transfer, credit_of(transfer), credit_of(transfer)])
    assert found == ["transfer T: 2 debits", "transfer T: 2 credits"]
    returned = debit("R", 5)
    found, _ = check(
        [returned, return_of(returned), return_of(returned)], [refused_credit_of(returned)]
    )
    assert found == ["transfer R: 2 returns"]


def test_a_credit_of_another_amount_or_currency_is_a_finding() -> None:
    transfer = debit("T", 5)
    credit = credit_of(transfer)
    found, _ = check([transfer, replace(credit, amount=6 * SCALE)])
    assert found == ["transfer T: credit of 6 USD but debit of 5 USD"]
    found, _ = check([transfer, replace(credit, currency="EUR")])
    assert found == ["transfer T: credit of 5 EUR but debit of 5 USD"]


def test_a_return_of_another_amount_is_a_finding() -> None:
    transfer = debit("T", 5)
    returned = replace(return_of(transfer), amount=4 * SCALE)
    found, _ = check([transfer, returned], [refused_credit_of(transfer)])
    assert found == ["transfer T: return of 4 USD but debit of 5 USD"]


def test_a_credit_to_another_user_is_a_finding() -> None:
    """The credit goes to the debit's counterparty and names the debit's user."""
    transfer = debit("T", 5)
    found, _ = check([transfer, replace(credit_of(transfer), user_id=3)])
    assert found == [
        f"transfer T: credit to user 3 (counterparty {SOURCE}) but debit from user {SOURCE}"
        f" to user {DESTINATION}"
    ]
    found, _ = check([transfer, replace(credit_of(transfer), counterparty_user_id=3)])
    assert len(found) == 1


def test_a_return_to_another_user_is_a_finding() -> None:
    """The return goes back to the debit's user."""
    transfer = debit("T", 5)
    returned = replace(return_of(transfer), user_id=DESTINATION)
    found, _ = check([transfer, returned], [refused_credit_of(transfer)])
    assert found == [
        f"transfer T: return to user {DESTINATION} (counterparty {DESTINATION}) but debit"
        f" from user {SOURCE} to user {DESTINATION}"
    ]


def test_a_later_leg_without_its_debit_is_a_finding() -> None:
    """A credit, a return or a refused credit of a transfer never debited."""
    transfer = debit("T", 5)
    found, summary = check([credit_of(transfer)])
    assert found == ["transfer T: a credit without its debit"]
    assert summary.transfers == 0
    found, _ = check([return_of(transfer)], [refused_credit_of(transfer)])
    assert found == [
        "transfer T: a return without its debit",
        "transfer T: a refused credit without its debit",
    ]


def test_a_return_without_a_refused_credit_is_a_finding() -> None:
    transfer = debit("T", 5)
    found, _ = check([transfer, return_of(transfer)])
    assert found == ["transfer T: returned but its credit was never refused"]


def test_a_transfer_credited_and_returned_is_a_finding() -> None:
    """The amount arrived twice: at the destination and back at the source."""
    transfer = debit("T", 5)
    found, _ = check([transfer, credit_of(transfer), return_of(transfer)])
    assert found == [
        "transfer T: both credited and returned",
        "transfer T: returned but its credit was never refused",
    ]


def test_legs_must_name_their_transfer_by_request_id() -> None:
    """A leg without a transfer id, with the wrong request id, and a deposit naming one."""
    transfer = debit("T", 5)
    found, _ = check([replace(transfer, transfer_id="")])
    assert found == ["request T: a TRANSFER_OUT that names no transfer"]
    found, _ = check([transfer, replace(credit_of(transfer), request_id="T~x")])
    assert found == ["request T~x: a TRANSFER_IN of transfer T with request id T~x, not T~in"]
    found, _ = check([replace(entry(ChangeType.DEPOSIT, 1), transfer_id="T")])
    assert found == ["request r: a DEPOSIT names transfer T"]


def test_books_of_two_shards_merge() -> None:
    """The debit in the source's shard, the credit in the destination's: complete."""
    transfer = debit("T", 5)
    found: list[str] = []
    source_shard, destination_shard = TransferBook(), TransferBook()
    source_shard.add_entry(transfer, found.append)
    destination_shard.add_entry(credit_of(transfer), found.append)
    total = TransferBook()
    total.merge(source_shard)
    total.merge(destination_shard)
    summary = total.check(APPLIED_AT_MS, MAX_IN_FLIGHT_MS, found.append)
    assert found == []
    assert (summary.transfers, summary.in_flight) == (1, 0)


def test_legs_found_after_the_scan_complete_their_transfer() -> None:
    """A debit and a refused credit committed after their shard's snapshot, before the
    later legs seen in another's: unmatched at first, complete once found."""
    credited, returned = debit("C", 5), debit("R", 2)
    book = TransferBook()
    found: list[str] = []
    for later_leg in (credit_of(credited), return_of(returned)):
        book.add_entry(later_leg, found.append)
    assert book.unmatched() == ({"C", "R"}, {"R"})
    book.add_found_later({"C": credited, "R": returned}, {"R"})
    assert book.unmatched() == (set(), set())
    summary = book.check(APPLIED_AT_MS, MAX_IN_FLIGHT_MS, found.append)
    assert found == []
    assert (summary.transfers, summary.in_flight) == (2, 0)
    # Both debits are in no snapshot's sums, their later legs are: the sums must put
    # 7 less in flight than the transfers do (0).
    assert book.in_flight_by_sums(summary) == {"USD": -7 * SCALE}


def test_a_later_look_ignores_what_is_not_a_debit_of_that_transfer() -> None:
    """Found under the transfer's id but not its debit: still a credit without one."""
    transfer = debit("T", 5)
    book = TransferBook()
    found: list[str] = []
    book.add_entry(credit_of(transfer), found.append)
    book.add_found_later({"T": replace(transfer, type=ChangeType.DEPOSIT)}, ())
    book.check(APPLIED_AT_MS, MAX_IN_FLIGHT_MS, found.append)
    assert found == ["transfer T: a credit without its debit"]
