"""The ``ledgerd`` command: the server, schema migration, operations, client calls, benchmark.

One module per group of subcommands, each adding its parsers with ``add_commands``;
``exit_codes`` decides what each outcome exits with.
"""

from __future__ import annotations

import os

# gRPC's C core writes its own lines straight to stderr, past Python's logging, so they
# could never be JSON (docs/operations.md, "Logs"); the errors it reports reach ledgerd as
# exceptions, which are logged. An operator's own GRPC_VERBOSITY wins. This must run
# before grpc is first imported, so it sits above the imports.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from ledgerd.cli import benchmark, calls, events, holds, locks, operations, server, statements
from ledgerd.cli.exit_codes import EPILOG, CommandFailed, ExitCode
from ledgerd.cli.parsing import HelpFormatter
from ledgerd.errors import LedgerError, MissingExtra
from ledgerd.settings import SettingsError

DESCRIPTION = """\
ledgerd: a balance service (gRPC + REST). Settings come from LEDGERD_* environment
variables (README, "Settings"); `ledgerd COMMAND --help` describes each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledgerd", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="print the version and exit",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of:"
    )
    for group in (server, operations, calls, statements, locks, holds, events, benchmark):
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (SettingsError, MissingExtra) as exc:  # as given, this can never work
        print(f"ledgerd: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except LedgerError as exc:  # expected (a store not migrated, a backend down): one line
        print(f"ledgerd: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ExitCode.ERROR


def _version() -> str:
    try:
        return metadata.version("ledgerd")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


__all__ = ["build_parser", "main"]
