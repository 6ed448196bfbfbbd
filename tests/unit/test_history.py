"""Statement page tokens and sizes, and the command line's moments (no I/O)."""

from __future__ import annotations

import argparse

import pytest

from ledgerd.cli.parsing import moment
from ledgerd.errors import InvalidArgument
from ledgerd.history import (
    MAX_STATEMENT_PAGE,
    StatementRange,
    parse_page_token,
    validate_statement_page_size,
)

RANGE = StatementRange(42, "USD", 1000, 2000, 3, 9, 5)


def test_a_page_token_reads_back_as_its_range() -> None:
    """The token of a range parses to the same range, given the same statement."""
    assert parse_page_token(RANGE.token(), 42, "USD", 1000, 2000) == RANGE


@pytest.mark.parametrize(
    ("user", "currency", "from_ms", "to_ms"),
    [
        (43, "USD", 1000, 2000),
        (42, "EUR", 1000, 2000),
        (42, "USD", 999, 2000),
        (42, "USD", 1000, 1),
    ],
)
def test_a_page_token_of_another_statement_is_refused(
    user: int, currency: str, from_ms: int, to_ms: int
) -> None:
    """Another user, currency, from or to: INVALID_ARGUMENT on page_token."""
    with pytest.raises(InvalidArgument) as refused:
        parse_page_token(RANGE.token(), user, currency, from_ms, to_ms)
    assert refused.value.field == "page_token"


@pytest.mark.parametrize(
    "token",
    ["nope", "", "!!!", StatementRange(42, "USD", 1000, 2000, 3, 9, 9).token(),
     StatementRange(42, "USD", 1000, 2000, 3, 9, 2).token()],
)  # fmt: skip
def test_a_token_that_is_not_one_is_refused(token: str) -> None:
    """Garbage, or a range whose position is outside its versions: INVALID_ARGUMENT."""
    with pytest.raises(InvalidArgument) as refused:
        parse_page_token(token, 42, "USD", 1000, 2000)
    assert refused.value.field == "page_token"


def test_page_size_defaults_to_100_and_is_capped() -> None:
    assert validate_statement_page_size(0) == 100
    assert validate_statement_page_size(7) == 7
    assert validate_statement_page_size(2**32 - 1) == MAX_STATEMENT_PAGE


def test_moments_are_unix_ms_or_iso_8601_in_utc_unless_an_offset_is_given() -> None:
    assert moment("1764547200000") == 1_764_547_200_000
    assert moment("2025-12-01") == 1_764_547_200_000
    assert moment("2025-12-01T01:00:00+01:00") == 1_764_547_200_000
    with pytest.raises(argparse.ArgumentTypeError):
        moment("yesterday")
    with pytest.raises(argparse.ArgumentTypeError):
        moment("1960-01-01")
