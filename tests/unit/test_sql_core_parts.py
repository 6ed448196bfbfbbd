"""The SQL store's dialect-free parts: literals, batch statements, row mapping, migration plan."""

from __future__ import annotations

import pytest

from ledgerd.domain.amounts import SCALE
from ledgerd.domain.model import (
    AccountLock,
    Balance,
    ChangeRequest,
    ChangeStatus,
    ChangeType,
    JournalEntry,
    Rejection,
    RejectReason,
    StoredRequest,
)
from ledgerd.errors import SchemaTooNew
from ledgerd.store.sql import rows, statements
from ledgerd.store.sql.migrate import pending
from ledgerd.store.sql.mysql_dialect import tsv_field
from ledgerd.store.sql.schema import LATEST_VERSION, MIGRATIONS, Migration
from ledgerd.store.sql.sqlite_dialect import text_literal


class TextEncoding:
    """Amounts as quoted text, user ids shifted (what SQLite forces)."""

    user_offset = 2**63
    amount_quote = "'"
    max_integer = 2**63 - 1


class NativeEncoding:
    user_offset = 0
    amount_quote = ""
    max_integer = 2**64 - 1


def plain_text(value: str) -> str:
    return f"'{value}'"


def test_key_literals_refuse_anything_outside_the_validated_alphabet() -> None:
    """Ids and currencies go into SQL text only if they cannot end the literal."""
    assert statements.key("r-1.a:b_C") == "'r-1.a:b_C'"
    for bad in ("it's", "a\\b", "a b", "é"):
        with pytest.raises(ValueError, match="unexpected characters"):
            statements.key(bad)


def test_key_columns_refuse_what_each_key_refuses_and_a_comma_inside_a_value() -> None:
    """Key lists and the journal, rejection and balance row text check a whole column at
    once: a bad character anywhere in it is refused, a comma inside a value too (the
    column's own separator), and a clean column reads as each key would."""
    assert statements.keys(["a", "b-1", ""]) == "'a','b-1',''"
    assert statements.keys([]) == ""
    row = (
        "r-1", 7, "USD", ChangeType.DEPOSIT, SCALE, SCALE, 0, 1, 5, "", "", 0, 0, 1, "", 0,
    )  # fmt: skip
    for bad in ("it's", "a,b", "a b", "é"):
        with pytest.raises(ValueError, match="unexpected characters"):
            statements.keys(["ok", bad])
        with pytest.raises(ValueError, match="unexpected characters"):
            list(
                statements.insert_journal_rows([row, (bad, *row[1:])], NativeEncoding(), plain_text)
            )
        rejected = ("r-2", 7, bad, ChangeType.WITHDRAW, SCALE, "", RejectReason.NONE)
        with pytest.raises(ValueError, match="unexpected characters"):
            list(statements.insert_rejection_rows([rejected], 5, NativeEncoding(), plain_text))


def test_sqlite_text_literals_double_quotes_and_refuse_nul() -> None:
    """Free text keeps every character but the quote, which is doubled."""
    assert text_literal('it\'s \\ "q" ✓\n') == "'it''s \\ \"q\" ✓\n'"
    with pytest.raises(ValueError, match="NUL"):
        text_literal("a\x00b")


def test_tsv_fields_escape_what_load_data_splits_on() -> None:
    """Backslash, tab and line breaks are escaped for LOAD DATA's default format."""
    assert tsv_field("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"


def test_request_inserts_are_sorted_chunked_and_encoded_per_engine() -> None:
    """New outbox rows go in primary-key order, ROWS_PER_STATEMENT per statement,
    with user ids and amounts in the engine's encoding, and their publish group."""
    count = statements.ROWS_PER_STATEMENT + 1
    requests = [
        ChangeRequest(f"r{n:05d}", 5, "USD", ChangeType.DEPOSIT, SCALE, "m")
        for n in reversed(range(count))
    ]
    sql = list(statements.insert_requests(requests, 7, "g-1", TextEncoding(), plain_text))
    assert len(sql) == 2
    assert sql[0].index("'r00000'") < sql[0].index("'r00001'")
    pending_ = int(ChangeStatus.PENDING)
    assert (
        f"('r00000',{5 - 2**63},'USD',1,'1','m',{pending_},7,7,'g-1','',{-(2**63)},'',0,'','',0)"
        in sql[0]
    )
    native = next(statements.insert_requests(requests[:1], 7, None, NativeEncoding(), plain_text))
    assert native.endswith(
        f"('r{count - 1:05d}',5,'USD',1,1,'m',{pending_},7,7,NULL,'',0,'',0,'','',0)"
    )


def test_rejections_are_one_multi_row_insert_with_the_request_fields() -> None:
    """A batch's rejections are recorded with their request's fields, in one INSERT."""
    rejections = [
        Rejection(
            ChangeRequest("w1", 5, "USD", ChangeType.WITHDRAW, SCALE, "it's"),
            RejectReason.INSUFFICIENT_AVAILABLE,
        ),
        Rejection(
            ChangeRequest("u1", 6, "EUR", ChangeType.UNFREEZE, 2 * SCALE),
            RejectReason.INSUFFICIENT_FROZEN,
        ),
    ]
    (sql,) = statements.insert_rejections(rejections, 99, NativeEncoding(), text_literal)
    assert sql.startswith("INSERT INTO rejections (request_id, user_id, currency, type, amount,")
    assert "('w1',5,'USD',2,1,'it''s',1,99,'',0)" in sql
    assert "('u1',6,'EUR',4,2,'',2,99,'',0)" in sql


def test_rows_map_back_through_the_user_offset() -> None:
    """Stored rows decode to the domain values the statements encoded."""
    offset = 2**63
    stored = ("r1", 2**64 - 1 - offset, "USD", 1, "1.5", "memo", 2, 0, "", -offset, "")
    request = rows.stored_request(stored, offset)
    assert request == StoredRequest(
        ChangeRequest("r1", 2**64 - 1, "USD", ChangeType.DEPOSIT, 3 * SCALE // 2, "memo"),
        ChangeStatus(2),
    )
    debit = ("t1", 7 - offset, "USD", 6, "1", "", 1, 0, "t1", 2**64 - 1 - offset, "")
    assert rows.stored_request(debit, offset).request == ChangeRequest(
        "t1", 7, "USD", ChangeType.TRANSFER_OUT, SCALE, "", "t1", 2**64 - 1
    )
    assert rows.balance((0, "EUR", "2", "0.1", 4, 2), 0) == Balance(
        0, "EUR", 2 * SCALE, SCALE // 10, 4, AccountLock.FULL
    )
    entry = JournalEntry("r1", 3, "USD", ChangeType.DEPOSIT, SCALE, SCALE, 0, 1, 5, "")
    values = statements.journal_values(entry, TextEncoding())
    assert rows.journal_entry(values, 2**63) == entry
    credit = JournalEntry(
        "t1~in", 3, "USD", ChangeType.TRANSFER_IN, SCALE, SCALE, 0, 1, 5, "", "t1", 9, 4, 2049
    )
    assert rows.journal_entry(statements.journal_values(credit, TextEncoding()), 2**63) == credit


def test_the_migration_plan_runs_missing_steps_and_refuses_unknown_ones() -> None:
    """pending() lists the steps after the recorded version; a newer version is refused."""
    assert [m.version for m in pending(MIGRATIONS, 0)] == [m.version for m in MIGRATIONS]
    assert pending(MIGRATIONS, LATEST_VERSION) == []
    with pytest.raises(SchemaTooNew) as refused:
        pending(MIGRATIONS, LATEST_VERSION + 3)
    assert (refused.value.found, refused.value.known) == (LATEST_VERSION + 3, LATEST_VERSION)


def test_migrations_are_numbered_in_order_and_cover_both_engines() -> None:
    """Versions count up from 1 without gaps (a database at N never runs a step numbered
    below N); every step says what each engine runs."""
    versions = [m.version for m in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    shared = Migration(9, "both", ("CREATE TABLE x (y INTEGER)",))
    assert shared.statements("sqlite") == shared.statements("mysql")
    for step in MIGRATIONS:
        assert step.by_dialect.keys() >= {"sqlite", "mysql"} or step.shared
