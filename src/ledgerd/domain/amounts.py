"""Exact amounts as scaled integers: 1 unit = 10**18 (the DECIMAL(38,18) scale)."""

from __future__ import annotations

import re

from ledgerd.errors import InvalidArgument

FRACTION_DIGITS = 18
SCALE: int = 10**FRACTION_DIGITS
# DECIMAL(38,18): 20 integer digits and 18 fractional digits.
MAX_SCALED: int = 10**38 - 1

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?", re.ASCII)


def parse_amount(text: str, field: str = "amount") -> int:
    """Parse a strictly positive request amount into scaled units.

    Raises:
        InvalidArgument: the text is not a canonical positive decimal in range.
    """
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidArgument(
            field, f"{text[:64]!r} is not a decimal with at most 20 integer and 18 fraction digits"
        )
    scaled = parse_decimal(text)
    if scaled == 0:
        raise InvalidArgument(field, "must be greater than zero")
    return scaled


def parse_decimal(text: str) -> int:
    """Scaled units of a non-negative decimal string already known to be well formed."""
    whole, _, fraction = text.partition(".")
    # One int() of the digits shifted by the scale: cheaper than two and a multiply.
    return int(whole + fraction.ljust(FRACTION_DIGITS, "0"))


def format_amount(scaled: int) -> str:
    """Canonical text: no exponent, no trailing fractional zeros ("1.5", "0", "100")."""
    if scaled < 0:
        return "-" + format_amount(-scaled)
    # Cut the digits at the scale: a third cheaper than divmod and a padded format, and
    # every journal entry, balance and event formats several amounts.
    digits = str(scaled)
    if len(digits) > FRACTION_DIGITS:
        whole, fraction = digits[:-FRACTION_DIGITS], digits[-FRACTION_DIGITS:].rstrip("0")
    else:
        whole, fraction = "0", digits.rjust(FRACTION_DIGITS, "0").rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole
