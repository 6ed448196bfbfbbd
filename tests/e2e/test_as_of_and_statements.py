"""Balances as of a moment or version, and statements, on every stack (issue 25.2).

Times are the applying consumer's clock: the test deposits one change at a time, reads
the moments the journal recorded, and asks about moments between them.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import grpc
import pytest
from e2e_support import new_user, rpc_code
from harness import ServerProcess

from ledgerd.cli.exit_codes import ExitCode
from ledgerd.client import LedgerdClient, LedgerdRpcError
from ledgerd.v1 import balance_pb2 as pb

AMOUNTS = ["1", "2.5", "3", "4", "5.25", "6", "7"]


@pytest.fixture(scope="module")
def history(server: ServerProcess) -> tuple[int, list[pb.JournalEntry]]:
    """A user with one deposit per amount, each applied before the next was sent."""
    user = new_user()
    with LedgerdClient(server.target, timeout_s=10) as client:
        for amount in AMOUNTS:
            result = client.change("deposit", user, "USD", amount, wait=True)
            assert result.status == pb.APPLIED
        entries = list(client.journal(user, "USD"))
    assert [e.version for e in entries] == list(range(1, len(AMOUNTS) + 1))
    return user, entries


def expected_version(entries: list[pb.JournalEntry], at_ms: int) -> int:
    """One server applies in version order with a clock that does not go back: the last
    version stamped at or before the moment."""
    return max((e.version for e in entries if e.applied_at_unix_ms <= at_ms), default=0)


def test_balance_as_of_each_moment_is_the_entry_applied_by_then(
    server: ServerProcess, history: tuple[int, list[pb.JournalEntry]]
) -> None:
    """As of each entry's moment, a moment before the first, and one far ahead: the journal's
    balance at that version, with the moment its entry was applied."""
    user, entries = history
    moments = [entries[0].applied_at_unix_ms - 1, *(e.applied_at_unix_ms for e in entries)]
    with LedgerdClient(server.target) as client:
        for at_ms in [*moments, 2**62]:
            answer = client.balance_as_of(user, "USD", as_of_unix_ms=at_ms)
            (balance,) = answer.balances
            version = expected_version(entries, at_ms)
            assert balance.version == version
            if version == 0:
                assert (balance.available, balance.frozen) == ("0", "0")
                assert list(answer.as_of.applied_at_unix_ms) == [0]
            else:
                assert balance.available == entries[version - 1].available_after
                assert list(answer.as_of.applied_at_unix_ms) == [
                    entries[version - 1].applied_at_unix_ms
                ]
            assert answer.as_of.as_of_unix_ms == at_ms


def test_balance_as_of_a_version_and_of_every_currency(
    server: ServerProcess, history: tuple[int, list[pb.JournalEntry]]
) -> None:
    """As of version 3: the amounts after it; version 0: zeros; every currency as of a
    moment lists the user's accounts touched by then; a live read has no as_of."""
    user, entries = history
    with LedgerdClient(server.target) as client:
        (third,) = client.balance_as_of(user, "USD", as_of_version=3).balances
        assert (third.version, third.available) == (3, entries[2].available_after)
        (zero,) = client.balance_as_of(user, "USD", as_of_version=0).balances
        assert (zero.version, zero.available) == (0, "0")
        (beyond,) = client.balance_as_of(user, "USD", as_of_version=10**6).balances
        assert beyond.version == len(entries)
        every = client.balance_as_of(user, as_of_unix_ms=entries[1].applied_at_unix_ms)
        assert [(b.currency, b.version) for b in every.balances] == [
            ("USD", expected_version(entries, entries[1].applied_at_unix_ms))
        ]
        before = client.balance_as_of(user, as_of_unix_ms=entries[0].applied_at_unix_ms - 1)
        assert list(before.balances) == []
        live = client.call("GetBalance", pb.GetBalanceRequest(user_id=user, currency="USD"))
        assert not live.HasField("as_of")


def test_a_statement_across_pages_adds_up_from_opening_to_closing(
    server: ServerProcess, history: tuple[int, list[pb.JournalEntry]]
) -> None:
    """[second entry's moment, sixth entry's moment) in pages of 2: every page has the same
    opening and closing, the entries are those stamped in the range in version order, and
    opening + entries = closing."""
    user, entries = history
    from_ms, to_ms = entries[1].applied_at_unix_ms, entries[5].applied_at_unix_ms
    wanted = [e.version for e in entries if from_ms <= e.applied_at_unix_ms < to_ms]
    with LedgerdClient(server.target) as client:
        pages = [client.statement_page(user, "USD", from_ms, to_ms, page_size=2)]
        while pages[-1].next_page_token:
            pages.append(
                client.statement_page(
                    user, "USD", from_ms, to_ms, page_size=2, page_token=pages[-1].next_page_token
                )
            )
        whole = client.statement(user, "USD", from_ms, to_ms)
    assert len(pages) == (len(wanted) + 1) // 2 and len(pages) >= 2
    assert {(p.opening.version, p.closing.version) for p in pages} == {(wanted[0] - 1, wanted[-1])}
    listed = [e for p in pages for e in p.entries]
    assert [e.version for e in listed] == wanted == [e.version for e in whole.entries]
    total = Decimal(pages[0].opening.available) + sum(Decimal(e.amount) for e in listed)
    assert total == Decimal(pages[0].closing.available)
    assert pages[0].closing.available == entries[wanted[-1] - 1].available_after


def test_bad_as_of_and_statement_input_names_the_field(
    server: ServerProcess, history: tuple[int, list[pb.JournalEntry]]
) -> None:
    """Both as-of fields, a version without a currency, an empty range, another statement's
    page token: INVALID_ARGUMENT naming the field."""
    user, entries = history
    from_ms, to_ms = entries[0].applied_at_unix_ms, entries[-1].applied_at_unix_ms + 1
    with LedgerdClient(server.target) as client:
        token = client.statement_page(user, "USD", from_ms, to_ms, page_size=1).next_page_token
        bad: list[tuple[str, pb.GetBalanceRequest | pb.GetStatementRequest, str]] = [
            (
                "GetBalance",
                pb.GetBalanceRequest(
                    user_id=user, currency="USD", as_of_unix_ms=1, as_of_version=1
                ),
                "as_of_version",
            ),
            ("GetBalance", pb.GetBalanceRequest(user_id=user, as_of_version=1), "currency"),
            ("GetBalance", pb.GetBalanceRequest(user_id=user, as_of_unix_ms=-1), "as_of_unix_ms"),
            (
                "GetStatement",
                pb.GetStatementRequest(user_id=user, currency="USD", from_unix_ms=5, to_unix_ms=5),
                "to_unix_ms",
            ),
            (
                "GetStatement",
                pb.GetStatementRequest(
                    user_id=user, currency="USD", from_unix_ms=0, to_unix_ms=9, page_token=token
                ),
                "page_token",
            ),
        ]
        for method, request, field in bad:
            with pytest.raises(grpc.RpcError) as refused:
                client.call(method, request)
            assert rpc_code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT
            assert isinstance(refused.value, LedgerdRpcError)
            assert [v.field for v in refused.value.field_violations] == [field]


def test_statement_command_prints_json_and_csv(
    server: ServerProcess, history: tuple[int, list[pb.JournalEntry]]
) -> None:
    """`ledgerd statement` reads every page (--page-size 3) and prints the whole statement:
    JSON with opening, entries and closing; CSV with an opening row, one row per entry and a
    closing row."""
    user, entries = history
    from_ms = str(entries[1].applied_at_unix_ms)
    to_ms = str(entries[-1].applied_at_unix_ms + 1)
    wanted = [str(e.version) for e in entries if e.applied_at_unix_ms >= int(from_ms)]
    common = ["statement", str(user), "USD", "--from", from_ms, "--to", to_ms, "--page-size", "3"]
    as_json = server.run_cli(*common, "--format", "json")
    assert as_json.returncode == ExitCode.OK, as_json.stderr
    document = json.loads(as_json.stdout)
    assert [e["version"] for e in document["entries"]] == wanted
    assert document["opening"]["version"] == str(int(wanted[0]) - 1)
    assert document["closing"]["available"] == entries[-1].available_after
    as_csv = server.run_cli(*common, "--format", "csv")
    assert as_csv.returncode == ExitCode.OK, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["row"] for r in rows] == ["opening", *["entry"] * len(wanted), "closing"]
    assert [r["version"] for r in rows[1:-1]] == wanted
    opening, closing = Decimal(rows[0]["available"]), Decimal(rows[-1]["available"])
    assert opening + sum(Decimal(r["amount"]) for r in rows[1:-1]) == closing
    empty = server.run_cli("statement", str(user), "USD", "--from", to_ms, "--to", from_ms)
    assert empty.returncode == ExitCode.USAGE
    assert "to_unix_ms" in empty.stderr
