"""What the operator's page may show: memos cut short, dead letters by their headers."""

from __future__ import annotations

from ledgerd.console.views import MEMO_SHOWN_CHARS, _dead_letter, memo_shown
from ledgerd.log.base import LogRecord


def test_memo_shown_keeps_a_short_memo_and_cuts_a_long_one() -> None:
    assert memo_shown("") == ""
    assert memo_shown("x" * MEMO_SHOWN_CHARS) == "x" * MEMO_SHOWN_CHARS
    assert memo_shown("y" * 256) == "y" * MEMO_SHOWN_CHARS + "…"


def test_dead_letter_shows_its_headers_and_never_its_value() -> None:
    """The value is the change as published (memo and signature included)."""
    record = LogRecord(
        "balance-changes-dlq",
        2,
        17,
        b"42",
        b'{"memo": "secret plans", "sig": "abcdef"}',
        (
            ("error", b"undecodable: bad json"),
            ("reason", b"undecodable"),
            ("source-topic", b"balance-changes"),
            ("source-partition", b"1"),
            ("source-offset", b"99"),
        ),
    )
    shown = _dead_letter(record)
    assert shown == {
        "partition": 2,
        "offset": 17,
        "key": "42",
        "reason": "undecodable",
        "error": "undecodable: bad json",
        "source": "balance-changes[1]@99",
    }
