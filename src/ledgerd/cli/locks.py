"""``ledgerd lock`` and ``ledgerd unlock``: an account's lock (LockAccount, UnlockAccount)."""

from __future__ import annotations

import argparse

from ledgerd.cli import exit_codes
from ledgerd.cli.calls import OUTCOME_EPILOG, _add_user, _call, _print, _target_options
from ledgerd.cli.parsing import Commands, add_command

LOCK_SCOPES = ["debits", "full"]


def add_commands(commands: Commands) -> None:
    target = _target_options()
    lock = add_command(
        commands,
        "lock",
        "lock an account: refuse its debits (--scope debits) or every change (--scope full)"
        " from now on, in log order; needs an admin key when signing is on",
        cmd_lock,
        parents=[target],
        epilog=OUTCOME_EPILOG,
    )
    _add_account(lock)
    lock.add_argument(
        "--scope",
        choices=LOCK_SCOPES,
        type=str.lower,
        required=True,
        help="debits: WITHDRAW, FREEZE, SPEND_FROZEN and transfers out are REJECTED;"
        " full: every change is",
    )
    _add_change_options(lock)
    unlock = add_command(
        commands,
        "unlock",
        "lift an account's lock; needs an admin key when signing is on",
        cmd_unlock,
        parents=[target],
        epilog=OUTCOME_EPILOG,
    )
    _add_account(unlock)
    _add_change_options(unlock)


def _add_account(parser: argparse.ArgumentParser) -> None:
    _add_user(parser)
    parser.add_argument("currency", help="currency code, e.g. USD")


def _add_change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--request-id", help="idempotency key: repeat it to retry safely (default: a new UUID)"
    )
    parser.add_argument("--memo", default="", help="why, for the journal, up to 256 chars")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="answer once APPLIED, or with the status when --timeout nears",
    )


def cmd_lock(args: argparse.Namespace) -> int:
    from ledgerd.client import lock_request

    request = lock_request(
        args.user, args.currency, args.scope,
        request_id=args.request_id, wait=args.wait, memo=args.memo,
    )  # fmt: skip
    answer = _call(args, "LockAccount", request)
    _print(answer)
    return exit_codes.for_change(answer.result.status, final_expected=args.wait)


def cmd_unlock(args: argparse.Namespace) -> int:
    from ledgerd.client import unlock_request

    request = unlock_request(
        args.user, args.currency, request_id=args.request_id, wait=args.wait, memo=args.memo
    )
    answer = _call(args, "UnlockAccount", request)
    _print(answer)
    return exit_codes.for_change(answer.result.status, final_expected=args.wait)
