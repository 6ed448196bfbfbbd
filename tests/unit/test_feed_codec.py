"""The cache feed's wire form: batch records, the single-balance records of older producers,
and poison detection."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerd.domain.amounts import MAX_SCALED, format_amount
from ledgerd.domain.model import AccountLock, Balance
from ledgerd.errors import PoisonMessage
from ledgerd.log.codec import (
    FEED_RECORD_BALANCES_MAX,
    decode_balance,
    decode_balance_rows,
    decode_balances,
    encode_balance,
    encode_balances,
)

_balances = st.builds(
    Balance,
    user_id=st.integers(min_value=1, max_value=2**64 - 1),
    currency=st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True),
    available=st.integers(min_value=0, max_value=MAX_SCALED),
    frozen=st.integers(min_value=0, max_value=MAX_SCALED),
    version=st.integers(min_value=0, max_value=2**64 - 1),
)


@given(st.lists(_balances, max_size=20))
def test_a_batch_record_round_trips_in_order(balances: list[Balance]) -> None:
    """Every balance of a batch record decodes exactly, amounts included, in record order."""
    assert decode_balances(encode_balances(balances)) == balances


@given(_balances)
def test_a_single_balance_record_of_an_older_producer_still_decodes(balance: Balance) -> None:
    """The record format before batches (one JSON object per balance) decodes as one balance."""
    assert decode_balances(encode_balance(balance)) == [balance]
    assert decode_balance(encode_balance(balance)) == balance


def test_the_two_formats_differ_in_their_first_byte() -> None:
    """A batch record is a JSON array tagged "balances" with columns, amounts as canonical
    decimal strings; an old record is a JSON object: readers tell them apart without trying."""
    balances = [Balance(7, "USD", 15 * 10**17, 0, 3), Balance(8, "EUR", 10**18, 2 * 10**18, 1)]
    batch = encode_balances(balances)
    assert json.loads(batch) == [
        "balances", [7, 8], ["USD", "EUR"], ["1.5", "1"], ["0", "2"], [3, 1], None
    ]  # fmt: skip
    assert encode_balance(balances[0]).startswith(b"{")


def test_fields_appended_by_a_newer_producer_are_ignored() -> None:
    """A batch record with more columns than this reader knows still decodes."""
    value = b'["balances",[7],["USD"],["1.5"],["0"],[3],null,["later"]]'
    assert decode_balances(value) == [Balance(7, "USD", 15 * 10**17, 0, 3)]


def test_locks_travel_with_their_balances_and_older_records_read_unlocked() -> None:
    """A record with a locked balance carries every balance's lock; a record written before
    locks existed (five columns) reads as unlocked."""
    balances = [Balance(7, "USD", 1, 0, 3, lock=AccountLock.FULL), Balance(8, "USD", 2, 0, 1)]
    assert decode_balances(encode_balances(balances)) == balances
    old = b'["balances",[7],["USD"],["1.5"],["0"],[3]]'
    assert decode_balances(old)[0].lock == AccountLock.NONE


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"[",
        b"not json",
        b"{}",
        b'["other",[7],["USD"],["1.5"],["0"],[3]]',
        b'["balances",[7,8],["USD"],["1.5"],["0"],[3]]',
        b'["balances",[7],["USD"],["1.5x"],["0"],[3]]',
        b'["balances",[7],["USD"],[1.5],["0"],[3]]',
        b'{"user_id":7,"currency":"USD","available":"x","frozen":"0","version":3}',
    ],
)
def test_undecodable_records_are_poison(value: bytes) -> None:
    """Bytes that are neither format, ragged columns and bad amounts raise PoisonMessage."""
    with pytest.raises(PoisonMessage):
        decode_balances(value)
    with pytest.raises(PoisonMessage):
        decode_balance_rows(value)


def _as_rows(balances: list[Balance]) -> list[tuple[int, str, str, str, int, int]]:
    return [
        (b.user_id, b.currency, format_amount(b.available), format_amount(b.frozen), b.version,
         b.lock)
        for b in balances
    ]  # fmt: skip


@given(st.lists(_balances, max_size=20), st.booleans())
def test_feed_rows_hold_the_balances_with_their_amounts_as_format_amount_writes_them(
    balances: list[Balance], lock_first: bool
) -> None:
    """decode_balance_rows gives, row for row, what decode_balances gives, each amount as the
    text format_amount makes of it (what the cache stores), old single records included."""
    if balances and lock_first:
        balances[0] = Balance(balances[0].user_id, balances[0].currency, lock=AccountLock.FULL)
    record = encode_balances(balances)
    assert decode_balance_rows(record) == _as_rows(decode_balances(record)) == _as_rows(balances)
    for balance in balances[:2]:  # the old format has no lock: it reads unlocked
        old = encode_balance(balance)
        assert decode_balance_rows(old) == _as_rows([decode_balance(old)])


@pytest.mark.parametrize(
    "texts",
    [
        ("1.50", "0"),
        ("007", "0.0"),
        ("1.000000000000000000", "00"),
        ("0.1234567890123456789", "12"),  # more fraction digits than the scale
        ("-5", "1"),
    ],
)
def test_feed_rows_rewrite_amounts_not_in_canonical_form_as_before(texts: tuple[str, str]) -> None:
    """A record whose amounts are not format_amount's text (no ledgerd writes one) gives rows
    with the text the balance path would have written: format_amount of the parsed amount."""
    available, frozen = texts
    value = f'["balances",[7,8],["USD","USD"],["2","{available}"],["{frozen}","0"],[3,4]]'
    record = value.encode()
    assert decode_balance_rows(record) == _as_rows(decode_balances(record))


def test_a_full_record_at_the_widest_fits_kafkas_default_message_size() -> None:
    """FEED_RECORD_BALANCES_MAX balances with every field at its widest stay under 1 MB."""
    widest = Balance(2**64 - 1, "W" * 16, MAX_SCALED, MAX_SCALED, 2**64 - 1)
    value = encode_balances([widest] * FEED_RECORD_BALANCES_MAX)
    assert len(value) < 1_000_000
    assert len(decode_balances(value)) == FEED_RECORD_BALANCES_MAX
