"""``ledgerd statement``: an account's statement over a time range, through GetStatement.

Every page is read (``--page-size`` entries a call) and printed as one JSON document, or as
CSV rows streamed page by page: an ``opening`` row, one ``entry`` row per journal entry in
version order, a ``closing`` row. Times are the applying consumer's clock (docs/api.md,
*Time*).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ledgerd.cli.calls import UINT64_MAX, _call, _target_options
from ledgerd.cli.exit_codes import ExitCode
from ledgerd.cli.parsing import Commands, add_command, int_in_range, moment

if TYPE_CHECKING:
    from ledgerd.v1 import balance_pb2 as pb

CSV_COLUMNS = (
    "row",
    "version",
    "applied_at_unix_ms",
    "request_id",
    "type",
    "amount",
    "available",
    "frozen",
    "memo",
    "transfer_id",
    "counterparty_user_id",
)


def add_commands(commands: Commands) -> None:
    statement = add_command(
        commands,
        "statement",
        "an account's statement over [--from, --to): opening balance, entries, closing balance",
        cmd_statement,
        parents=[_target_options()],
        epilog="times: Unix milliseconds, or ISO 8601 (2026-12-01, 2026-12-01T09:30:00+01:00;"
        " UTC\nwhen no offset is given)\n"
        "exit status: 0 printed, 2 bad input, 1 error",
    )
    statement.add_argument("user", type=int_in_range(1, UINT64_MAX), help="user id, 1 to 2^64-1")
    statement.add_argument("currency", help="currency code, e.g. USD")
    statement.add_argument(
        "--from", dest="from_ms", type=moment, required=True, metavar="TIME", help="inclusive"
    )
    statement.add_argument(
        "--to",
        dest="to_ms",
        type=moment,
        default=None,
        metavar="TIME",
        help="exclusive (default: now, every entry applied so far included)",
    )
    statement.add_argument("--format", choices=["json", "csv"], default="json", help="output")
    statement.add_argument(
        "--page-size",
        type=int_in_range(1, 1000),
        default=1000,
        metavar="N",
        help="entries per call",
    )


def cmd_statement(args: argparse.Namespace) -> int:
    to_ms = args.to_ms if args.to_ms is not None else time.time_ns() // 1_000_000 + 1
    pages = _pages(args, to_ms)
    if args.format == "csv":
        _print_csv(pages)
    else:
        _print_json(args, to_ms, pages)
    return ExitCode.OK


def _pages(args: argparse.Namespace, to_ms: int) -> Iterator[pb.GetStatementResponse]:
    """Every page, fetched as the previous one is used.

    Raises:
        CommandFailed: a call failed (the exit status says whether the input was at fault).
    """
    from ledgerd.v1 import balance_pb2 as pb

    token = ""
    while True:
        request = pb.GetStatementRequest(
            user_id=args.user,
            currency=args.currency,
            from_unix_ms=args.from_ms,
            to_unix_ms=to_ms,
            page_size=args.page_size,
            page_token=token,
        )
        page: pb.GetStatementResponse = _call(args, "GetStatement", request)
        yield page
        token = page.next_page_token
        if not token:
            return


def _print_json(
    args: argparse.Namespace, to_ms: int, pages: Iterator[pb.GetStatementResponse]
) -> None:
    from google.protobuf import json_format

    def fields(message: Any) -> dict[str, Any]:
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    first = next(pages)
    entries = [fields(e) for page in (first, *pages) for e in page.entries]
    document = {
        "user_id": str(args.user),
        "currency": args.currency,
        "from_unix_ms": str(args.from_ms),
        "to_unix_ms": str(to_ms),
        "opening": fields(first.opening),
        "opening_applied_at_unix_ms": str(first.opening_applied_at_unix_ms),
        "entries": entries,
        "closing": fields(first.closing),
        "closing_applied_at_unix_ms": str(first.closing_applied_at_unix_ms),
    }
    print(json.dumps(document, indent=2))


def _print_csv(pages: Iterator[pb.GetStatementResponse]) -> None:
    from ledgerd.v1 import balance_pb2 as pb

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    first = next(pages)
    opening, closing = first.opening, first.closing
    out.writerow(_balance_row("opening", opening, first.opening_applied_at_unix_ms))
    for page in (first, *pages):
        for e in page.entries:
            out.writerow(
                (
                    "entry",
                    e.version,
                    e.applied_at_unix_ms,
                    e.request_id,
                    pb.ChangeType.Name(e.type),
                    e.amount,
                    e.available_after,
                    e.frozen_after,
                    e.memo,
                    e.transfer_id,
                    e.counterparty_user_id or "",
                )
            )
        sys.stdout.flush()
    out.writerow(_balance_row("closing", closing, first.closing_applied_at_unix_ms))


def _balance_row(name: str, balance: pb.Balance, applied_at_ms: int) -> tuple[object, ...]:
    return (name, balance.version, applied_at_ms, "", "", "", balance.available, balance.frozen,
            "", "", "")  # fmt: skip
