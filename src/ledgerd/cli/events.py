"""``ledgerd events tail``: the change events (docs/events.md), through a server's TailEvents.

Prints one event per line, as compact JSON (a BalanceEvent in protobuf's JSON mapping,
the same as the ``balance-events`` records), flushing each, until ``--limit`` events,
``--timeout``, or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys

from ledgerd.cli import exit_codes
from ledgerd.cli.calls import client_for, client_settings
from ledgerd.cli.exit_codes import CommandFailed, ExitCode
from ledgerd.cli.parsing import Commands, add_command, int_in_range, positive_float

UINT32_MAX = 2**32 - 1


def add_commands(commands: Commands) -> None:
    events = add_command(
        commands, "events", "follow the change events (docs/events.md) through a server", None
    )
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    tail = add_command(
        actions,
        "tail",
        "print change events as they are published, one JSON object per line",
        cmd_tail,
        epilog="exit status: 0 after --limit events, --timeout or Ctrl-C; 1 error",
    )
    tail.add_argument(
        "--addr",
        metavar="HOST:PORT",
        help="the server (default: $LEDGERD_ADDR, else $LEDGERD_GRPC_ADDR on this host,"
        " else 127.0.0.1:50051)",
    )
    tail.add_argument(
        "--from-beginning",
        action="store_true",
        help="start from the oldest event kept (default: only events published from now on)",
    )
    tail.add_argument(
        "--limit",
        type=int_in_range(0, UINT32_MAX),
        default=0,
        metavar="N",
        help="stop after N events (default 0: until Ctrl-C or --timeout)",
    )
    tail.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop after this long (default: never)",
    )


def cmd_tail(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format

    from ledgerd.client import LedgerdRpcError

    target = args.addr or client_settings().target
    with client_for(target, args.timeout or 15.0) as client:
        try:
            with client.tail_events(
                from_beginning=args.from_beginning, limit=args.limit, timeout_s=args.timeout
            ) as stream:
                for event in stream:
                    fields = json_format.MessageToDict(
                        event,
                        preserving_proto_field_name=True,
                        always_print_fields_with_no_presence=True,  # as in the topic
                    )
                    print(json.dumps(fields), flush=True)
        except KeyboardInterrupt:
            return ExitCode.OK
        except LedgerdRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return ExitCode.OK  # --timeout: the tail ran as long as asked
            raise CommandFailed(
                f"{code.name}: {exc.details()}", exit_codes.for_rpc_error(code)
            ) from None
        except BrokenPipeError:  # `| head`: the reader has all it wants
            sys.stderr.close()
            return ExitCode.OK
    return ExitCode.OK
