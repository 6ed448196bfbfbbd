"""Amounts: parsing request text into scaled units and formatting it back."""

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerd.domain.amounts import (
    FRACTION_DIGITS,
    MAX_SCALED,
    SCALE,
    format_amount,
    parse_amount,
)
from ledgerd.errors import InvalidArgument

LARGEST_AMOUNT_TEXT = "9" * 20 + "." + "9" * 18


@pytest.mark.parametrize(
    ("text", "scaled"),
    [
        ("1", SCALE),
        ("0.5", SCALE // 2),
        ("1.50", SCALE * 3 // 2),
        ("0.000000000000000001", 1),
        (LARGEST_AMOUNT_TEXT, MAX_SCALED),
    ],
)
def test_parse_amount_accepts_canonical_positive_decimals(text: str, scaled: int) -> None:
    """A positive decimal with at most 20 integer and 18 fraction digits parses exactly."""
    assert parse_amount(text) == scaled


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("0", id="zero"),
        pytest.param("0.0", id="zero-with-fraction"),
        pytest.param("-1", id="negative"),
        pytest.param("1e5", id="exponent"),
        pytest.param("NaN", id="nan"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param("1.", id="empty-fraction"),
        pytest.param(".5", id="empty-integer"),
        pytest.param("01", id="leading-zero"),
        pytest.param("1." + "1" * 19, id="19-fraction-digits"),
        pytest.param("1" * 21, id="21-integer-digits"),
        pytest.param("\uff11", id="full-width-digit"),
        pytest.param("1\n", id="trailing-newline"),
    ],
)
def test_parse_amount_rejects_malformed_or_non_positive_text(text: str) -> None:
    """Malformed, zero or out-of-range text raises InvalidArgument naming the amount field."""
    with pytest.raises(InvalidArgument) as excinfo:
        parse_amount(text)
    assert excinfo.value.field == "amount"


def test_parse_amount_names_the_field_it_was_given() -> None:
    """The field name passed by the caller is the one the error reports."""
    with pytest.raises(InvalidArgument) as excinfo:
        parse_amount("x", field="changes[2].amount")
    assert excinfo.value.field == "changes[2].amount"


@pytest.mark.parametrize(
    ("scaled", "text"),
    [
        (0, "0"),
        (SCALE * 3 // 2, "1.5"),
        (100 * SCALE, "100"),
        (SCALE // 10, "0.1"),
        (1, "0.000000000000000001"),
        (MAX_SCALED, LARGEST_AMOUNT_TEXT),
        (-SCALE * 3 // 2, "-1.5"),
        (-100 * SCALE, "-100"),
    ],
)
def test_format_amount_is_canonical(scaled: int, text: str) -> None:
    """Output has no exponent and no trailing fractional zeros, with a sign when negative."""
    assert format_amount(scaled) == text


@given(st.integers(min_value=1, max_value=MAX_SCALED))
def test_format_then_parse_round_trips(scaled: int) -> None:
    """Every positive in-range amount survives format_amount then parse_amount unchanged."""
    assert parse_amount(format_amount(scaled)) == scaled


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_format_amount_is_the_exact_decimal(scaled: int) -> None:
    """format_amount gives the exact decimal value of any scaled integer, sign included."""
    text = format_amount(scaled)
    with localcontext(prec=100):
        assert Decimal(text) == Decimal(scaled).scaleb(-FRACTION_DIGITS)
    assert "e" not in text.lower() and not text.endswith(".")
    assert "." not in text or not text.endswith("0")
