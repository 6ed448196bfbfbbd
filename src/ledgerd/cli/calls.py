"""The client commands: ``balance``, ``change``, ``batch``, ``transfer``, ``journal``,
``get-change``, ``get-transfer``, ``health``.

Each calls one RPC with the Python client, prints the answer as JSON on stdout and
exits with the status ``exit_codes`` gives its outcome; a failed call prints
``error: CODE: details`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ledgerd.cli import exit_codes
from ledgerd.cli.exit_codes import CommandFailed, ExitCode
from ledgerd.cli.parsing import Commands, add_command, int_in_range, moment, positive_float
from ledgerd.errors import InvalidArgument
from ledgerd.settings import ClientSettings, SettingsError

# grpc and protobuf's JSON are imported where used: operator commands (audit, migrate...)
# load this module too, and should not pay for a client they do not use.
if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ledgerd.client import LedgerdClient

UINT64_MAX = 2**64 - 1
DEFAULT_TIMEOUT_S = 15.0
# What ChangeBalance(s) accept; the transfer leg types are made by `transfer` only.
CHANGE_TYPES = ["deposit", "withdraw", "freeze", "unfreeze", "spend_frozen"]
OUTCOME_EPILOG = """\
exit status: 0 APPLIED (or accepted: PENDING, without --wait), 3 REJECTED,
4 not final when --wait ran out, 2 bad input, 1 error"""


def add_commands(commands: Commands) -> None:
    target = _target_options()

    balance = add_command(
        commands, "balance", "show a user's balances", cmd_balance, parents=[target]
    )
    _add_user(balance)
    balance.add_argument(
        "currency", nargs="?", default="", help="one currency, e.g. USD (default: every one)"
    )
    _add_as_of(balance)

    change = add_command(
        commands,
        "change",
        "change a balance",
        cmd_change,
        parents=[target],
        epilog=OUTCOME_EPILOG,
    )
    change.add_argument(
        "type",
        choices=CHANGE_TYPES,
        type=str.lower,
        help="what to do (any letter case); spend_frozen lowers frozen only, settling a hold",
    )
    _add_user(change)
    change.add_argument("currency", help="currency code, e.g. USD (A-Z and 0-9, 1 to 16)")
    change.add_argument("amount", help="decimal amount above 0, e.g. 10.5")
    change.add_argument(
        "--request-id", help="idempotency key: repeat it to retry safely (default: a new UUID)"
    )
    change.add_argument("--memo", default="", help="free text for the journal, up to 256 chars")
    change.add_argument(
        "--wait",
        action="store_true",
        help="answer once APPLIED or REJECTED, or with the status when --timeout nears",
    )

    batch = add_command(
        commands,
        "batch",
        "send several changes in one ChangeBalances call",
        cmd_batch,
        parents=[target],
        epilog="input: a JSON array of changes, or one per line, each as the REST API's\n"
        'ChangeRequest: {"request_id": "o-1", "user_id": "42", "currency": "USD",\n'
        '"type": "SPEND_FROZEN", "amount": "5", "memo": "..."} (no request_id: a new UUID)\n'
        "exit status: 0 every change APPLIED (or accepted, without --wait), 3 any REJECTED,\n"
        "4 any not final when --wait ran out, 2 bad input, 1 error",
    )
    batch.add_argument(
        "file", nargs="?", default="-", help="the changes as JSON (default: -, standard input)"
    )
    batch.add_argument(
        "--atomic",
        action="store_true",
        help="all changes for one user (at most 100): applied in order, all or none",
    )
    batch.add_argument(
        "--wait",
        action="store_true",
        help="answer once every change is APPLIED or REJECTED, or when --timeout nears",
    )

    transfer = add_command(
        commands,
        "transfer",
        "move funds from one user to another (exactly once, across partitions)",
        cmd_transfer,
        parents=[target],
        epilog="APPLIED: the debit and the credit both applied\n" + OUTCOME_EPILOG,
    )
    transfer.add_argument(
        "--request-id", help="idempotency key: repeat it to retry safely (default: a new UUID)"
    )
    transfer.add_argument(
        "--from-user", type=_user_id, required=True, metavar="USER", help="the user who pays"
    )
    transfer.add_argument(
        "--to-user", type=_user_id, required=True, metavar="USER", help="the user who is paid"
    )
    transfer.add_argument("--currency", required=True, help="currency code, e.g. USD")
    transfer.add_argument("--amount", required=True, help="decimal amount above 0, e.g. 10.5")
    transfer.add_argument(
        "--from-frozen",
        action="store_true",
        help="pay from the source's frozen amount (a hold) instead of its available amount",
    )
    transfer.add_argument(
        "--memo", default="", help="free text for both journal entries, up to 256 chars"
    )
    transfer.add_argument(
        "--wait",
        action="store_true",
        help="answer once APPLIED or REJECTED, or with the status when --timeout nears",
    )

    journal = add_command(
        commands, "journal", "list an account's journal", cmd_journal, parents=[target]
    )
    _add_user(journal)
    journal.add_argument("currency", help="currency code, e.g. USD")
    journal.add_argument(
        "--after",
        type=int_in_range(0, UINT64_MAX),
        default=0,
        metavar="VERSION",
        help="only versions after this one (to page: the last version seen)",
    )
    journal.add_argument(
        "--limit",
        type=int_in_range(1, 1000),
        default=100,
        metavar="N",
        help="at most this many entries",
    )

    get_change = add_command(
        commands,
        "get-change",
        "show one change request's status",
        cmd_get_change,
        parents=[target],
        epilog="exit status: 0 APPLIED, 3 REJECTED, 4 not final yet (PENDING, SENT, FAILED),\n"
        "1 error (NOT_FOUND: no such request)",
    )
    get_change.add_argument("request_id", help="the change's idempotency key")

    get_transfer = add_command(
        commands,
        "get-transfer",
        "show one transfer's status",
        cmd_get_transfer,
        parents=[target],
        epilog="exit status: 0 APPLIED, 3 REJECTED, 4 not final yet (PENDING),\n"
        "1 error (NOT_FOUND: no such transfer)",
    )
    get_transfer.add_argument("request_id", help="the transfer's idempotency key")

    health = add_command(
        commands,
        "health",
        "show a process's health (exit 1 unless SERVING)",
        cmd_health,
        parents=[target],
    )
    health.add_argument(
        "--probe",
        nargs="?",
        const="",
        default=None,
        metavar="HOST:PORT",
        help="ask the operations port's /readyz instead of the HealthCheck RPC (any process,"
        " whatever its roles; HOST:PORT default: $LEDGERD_METRICS_ADDR on this host,"
        " else 127.0.0.1:9091)",
    )


def _target_options() -> argparse.ArgumentParser:
    """--addr and --timeout, shared by every client command."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--addr",
        metavar="HOST:PORT",
        help="the server (default: $LEDGERD_ADDR, else $LEDGERD_GRPC_ADDR on this host,"
        " else 127.0.0.1:50051)",
    )
    options.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="deadline of the whole command, every retry included",
    )
    return options


_user_id = int_in_range(1, UINT64_MAX)


def _add_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", type=_user_id, help="user id, 1 to 2^64-1")


def cmd_balance(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    request = pb.GetBalanceRequest(user_id=args.user, currency=args.currency)
    if args.as_of is not None:
        request.as_of_unix_ms = args.as_of
    if args.as_of_version is not None:
        request.as_of_version = args.as_of_version
    _print(_call(args, "GetBalance", request))
    return ExitCode.OK


def _add_as_of(balance: argparse.ArgumentParser) -> None:
    """``balance``'s options to read from the journal instead (docs/api.md, *Time*)."""
    balance.add_argument(
        "--as-of",
        type=moment,
        metavar="TIME",
        help="as of this moment, included: Unix ms or ISO 8601 (UTC when no offset is given)",
    )
    balance.add_argument(
        "--as-of-version",
        type=int_in_range(0, UINT64_MAX),
        metavar="VERSION",
        help="right after this version of the account (needs CURRENCY)",
    )


def cmd_change(args: argparse.Namespace) -> int:
    from ledgerd.client import change_request

    request = change_request(
        args.type,
        args.user,
        args.currency,
        args.amount,
        request_id=args.request_id,
        wait=args.wait,
        memo=args.memo,
    )
    result = _call(args, "ChangeBalance", request)
    _print(result)
    return exit_codes.for_change(result.status, final_expected=args.wait)


def cmd_batch(args: argparse.Namespace) -> int:
    from ledgerd.cli.batch_input import batch_request

    text = _read_input(args.file)
    try:
        request = batch_request(text, wait=args.wait, atomic=args.atomic)
    except InvalidArgument as exc:
        raise CommandFailed(f"INVALID_ARGUMENT: {exc}", ExitCode.USAGE) from None
    answer = _call(args, "ChangeBalances", request)
    _print(answer)
    return exit_codes.for_changes(
        [result.status for result in answer.results], final_expected=args.wait
    )


def _read_input(name: str) -> str:
    """Raises: CommandFailed: the file cannot be read (exit 2: the command names it)."""
    if name == "-":
        return sys.stdin.read()
    try:
        with open(name, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandFailed(f"cannot read {name}: {exc}", ExitCode.USAGE) from None


def cmd_transfer(args: argparse.Namespace) -> int:
    from ledgerd.client import transfer_request

    request = transfer_request(
        args.from_user,
        args.to_user,
        args.currency,
        args.amount,
        request_id=args.request_id,
        from_frozen=args.from_frozen,
        wait=args.wait,
        memo=args.memo,
    )
    answer = _call(args, "Transfer", request)
    _print(answer)
    return exit_codes.for_change(answer.transfer.status, final_expected=args.wait)


def cmd_get_transfer(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    answer = _call(args, "GetTransfer", pb.GetTransferRequest(request_id=args.request_id))
    _print(answer)
    return exit_codes.for_change(answer.transfer.status, final_expected=True)


def cmd_journal(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    request = pb.ListJournalRequest(
        user_id=args.user, currency=args.currency, after_version=args.after, limit=args.limit
    )
    _print(_call(args, "ListJournal", request))
    return ExitCode.OK


def cmd_get_change(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    result = _call(args, "GetChange", pb.GetChangeRequest(request_id=args.request_id))
    _print(result)
    return exit_codes.for_change(result.status, final_expected=True)


def cmd_health(args: argparse.Namespace) -> int:
    """Health over gRPC from an API process, or with --probe from any process's /readyz."""
    from ledgerd.v1 import balance_pb2 as pb

    if args.probe is None:
        answer = _call(args, "HealthCheck", pb.HealthCheckRequest())
        _print(answer)
        return ExitCode.OK if answer.status == pb.HealthCheckResponse.SERVING else ExitCode.ERROR
    url = f"http://{args.probe or client_settings().probe_target}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503 NOT_SERVING still carries the report
        body = exc.read()
    except (OSError, urllib.error.URLError) as exc:
        raise CommandFailed(f"UNAVAILABLE: {url}: {exc}", ExitCode.ERROR) from None
    report = json.loads(body)
    print(json.dumps(report, indent=2, sort_keys=True))
    return ExitCode.OK if report.get("status") == "SERVING" else ExitCode.ERROR


def _call(args: argparse.Namespace, method: str, request: Message) -> Any:
    """The RPC's answer.

    Raises:
        CommandFailed: the call failed; the exit status says whether the input was at fault.
    """
    import grpc

    from ledgerd.client import LedgerdRpcError

    target = args.addr or client_settings().target
    with client_for(target, args.timeout) as client:
        try:
            return client.call(method, request)
        except LedgerdRpcError as exc:
            code = exc.code()
            details = exc.details()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                details = f"no answer from {target} within --timeout {args.timeout:g} s"
            if len(exc.field_violations) > 1:  # the message names only the first
                details += "".join(f"\n  {v.field}: {v.description}" for v in exc.field_violations)
            raise CommandFailed(f"{code.name}: {details}", exit_codes.for_rpc_error(code)) from None


def client_for(target: str, timeout_s: float) -> LedgerdClient:
    """A client whose calls end within ``timeout_s`` overall, signing with
    LEDGERD_CLIENT_KEY_ID/_SECRET when set, trusting LEDGERD_CLIENT_TLS_CA when set."""
    from ledgerd.client import LedgerdClient

    settings = client_settings()
    ca = None
    if settings.client_tls_ca:
        try:
            ca = settings.client_tls_ca.read_bytes()
        except OSError as exc:
            raise SettingsError(f"LEDGERD_CLIENT_TLS_CA: {exc}") from None
    return LedgerdClient(
        target,
        key_id=settings.client_key_id or None,
        secret=settings.client_secret or None,
        tls_root_cert=ca,
        # The per-attempt timeout is cut to what the deadline leaves: one unanswered
        # attempt may use it all, retries only fit in what is left.
        timeout_s=timeout_s,
        deadline_s=timeout_s,
    )


def client_settings() -> ClientSettings:
    try:
        return ClientSettings()
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None


def _print(message: Message) -> None:
    from google.protobuf import json_format

    print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2))
