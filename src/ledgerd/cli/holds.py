"""``ledgerd hold``: place, capture and release holds, and show one (docs/api.md, "Holds")."""

from __future__ import annotations

import argparse

from ledgerd.cli import exit_codes
from ledgerd.cli.calls import OUTCOME_EPILOG, _add_user, _call, _print, _target_options, _user_id
from ledgerd.cli.parsing import Commands, add_command


def add_commands(commands: Commands) -> None:
    target = _target_options()
    hold = add_command(commands, "hold", "holds: place, capture, release, get", None)
    verbs = hold.add_subparsers(dest="hold_command", required=True, metavar="VERB", help="one of:")
    get = add_command(
        verbs, "get", "show a hold: amount, captured, remaining, state and expiry", cmd_get,
        parents=[target], epilog="exit status: 0 found, 1 error (NOT_FOUND: no such hold)",
    )  # fmt: skip
    _add_user(get)
    get.add_argument("hold_id", help="the hold's id (its HOLD's request id)")
    place = add_command(
        verbs, "place", "freeze AMOUNT under a new hold that expires after --timeout-ms",
        cmd_place, parents=[target], epilog=OUTCOME_EPILOG,
    )  # fmt: skip
    _add_account(place)
    place.add_argument("amount", help="decimal amount, e.g. 10.5")
    expiry = place.add_mutually_exclusive_group(required=True)
    expiry.add_argument("--timeout-ms", type=int, default=0, help="expires this long from now")
    expiry.add_argument("--expires-at-ms", type=int, default=0, help="expires then (Unix ms)")
    _add_change_options(place, "the hold's id: repeat it to retry safely (default: a new UUID)")
    capture = add_command(
        verbs, "capture", "capture AMOUNT of a hold (to the holder's spend, or --to-user)",
        cmd_capture, parents=[target], epilog=OUTCOME_EPILOG,
    )  # fmt: skip
    _add_account(capture)
    capture.add_argument("hold_id", help="the hold's id")
    capture.add_argument("amount", help="decimal amount, at most what remains")
    capture.add_argument("--to-user", type=_user_id, default=0, help="credit this user instead")
    _add_change_options(capture)
    release = add_command(
        verbs, "release", "release what remains of a hold back to available", cmd_release,
        parents=[target], epilog=OUTCOME_EPILOG,
    )  # fmt: skip
    _add_account(release)
    release.add_argument("hold_id", help="the hold's id")
    _add_change_options(release)


def _add_account(parser: argparse.ArgumentParser) -> None:
    _add_user(parser)
    parser.add_argument("currency", help="currency code, e.g. USD")


def _add_change_options(
    parser: argparse.ArgumentParser,
    request_id_help: str = "idempotency key: repeat it to retry safely (default: a new UUID)",
) -> None:
    parser.add_argument("--request-id", help=request_id_help)
    parser.add_argument("--memo", default="", help="free text for the journal, up to 256 chars")
    parser.add_argument(
        "--wait", action="store_true", help="answer once APPLIED/REJECTED, or when --timeout nears"
    )


def cmd_get(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    _print(_call(args, "GetHold", pb.GetHoldRequest(user_id=args.user, hold_id=args.hold_id)))
    return exit_codes.ExitCode.OK


def cmd_place(args: argparse.Namespace) -> int:
    from ledgerd.client import hold_request

    request = hold_request(
        args.user, args.currency, args.amount, timeout_ms=args.timeout_ms,
        expires_at_unix_ms=args.expires_at_ms, request_id=args.request_id, wait=args.wait,
        memo=args.memo,
    )  # fmt: skip
    return _change(args, request)


def cmd_capture(args: argparse.Namespace) -> int:
    from ledgerd.client import capture_request

    request = capture_request(
        args.user, args.currency, args.hold_id, args.amount, to_user_id=args.to_user,
        request_id=args.request_id, wait=args.wait, memo=args.memo,
    )  # fmt: skip
    return _change(args, request)


def cmd_release(args: argparse.Namespace) -> int:
    from ledgerd.client import release_request

    request = release_request(
        args.user, args.currency, args.hold_id, request_id=args.request_id, wait=args.wait,
        memo=args.memo,
    )  # fmt: skip
    return _change(args, request)


def _change(args: argparse.Namespace, request: object) -> int:
    answer = _call(args, "ChangeBalance", request)  # type: ignore[arg-type]
    _print(answer)
    return exit_codes.for_change(answer.status, final_expected=args.wait)
