"""What each ``ledgerd`` exit status means, decided in one place."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

from ledgerd.v1 import balance_pb2 as pb

if TYPE_CHECKING:
    # Only a type here: every command loads this module, most never touch grpc.
    import grpc


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # the server or the connection failed; a retry or an operator may fix it
    USAGE = 2  # the command as given can never succeed (argparse also exits 2)
    REJECTED = 3
    NOT_FINAL = 4


class CommandFailed(Exception):
    """A command could not do its job; ``main`` prints ``error: <message>`` and exits."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Errors that say the input itself is wrong: running the same command again cannot help.
_BAD_INPUT = frozenset({"INVALID_ARGUMENT", "ALREADY_EXISTS"})  # grpc.StatusCode names
_NOT_FINAL = frozenset({pb.PENDING, pb.SENT, pb.FAILED})

EPILOG = """\
exit status:
  0  done: a read answered; a change or transfer APPLIED (or, without --wait,
     accepted)
  1  error: the server, a backend or the connection failed (UNAVAILABLE,
     DEADLINE_EXCEEDED once --timeout is spent, UNAUTHENTICATED, NOT_FOUND ...);
     `audit` found a problem; `health` is not SERVING
  2  usage or bad input: an unknown option or malformed argument, a value the
     server refuses (INVALID_ARGUMENT), a request id already used for another
     change (ALREADY_EXISTS), a bad LEDGERD_* setting, a backend whose extra is
     not installed (e.g. a mysql:// store without ledgerd[mysql])
  3  the change or transfer was REJECTED (e.g. insufficient funds); `batch`:
     any of its changes
  4  the change or transfer is not final yet (PENDING, SENT or FAILED, to be
     retried by the relay): `change --wait`, `transfer --wait` or `batch --wait`
     whose wait ran out, or `get-change`, `get-transfer`"""


def for_change(status: int, *, final_expected: bool) -> ExitCode:
    """The exit status of a change's result; PENDING counts as done unless a final one was due."""
    if status == pb.REJECTED:
        return ExitCode.REJECTED
    if status in _NOT_FINAL and final_expected:
        return ExitCode.NOT_FINAL
    return ExitCode.OK


def for_changes(statuses: Sequence[int], *, final_expected: bool) -> ExitCode:
    """A batch's exit status: REJECTED if any change was, else NOT_FINAL if any is not
    final when a final one was due, else OK."""
    codes = {for_change(status, final_expected=final_expected) for status in statuses}
    for code in (ExitCode.REJECTED, ExitCode.NOT_FINAL):
        if code in codes:
            return code
    return ExitCode.OK


def for_rpc_error(code: grpc.StatusCode) -> ExitCode:
    return ExitCode.USAGE if code.name in _BAD_INPUT else ExitCode.ERROR
