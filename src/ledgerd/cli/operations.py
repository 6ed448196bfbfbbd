"""``ledgerd audit`` and ``ledgerd dlq``: an operator's checks and repairs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ledgerd.cli.parsing import Commands, add_command, positive_int
from ledgerd.settings import Settings, load_settings

if TYPE_CHECKING:
    from ledgerd.log import EventLog


def add_commands(commands: Commands) -> None:
    audit = add_command(
        commands,
        "audit",
        "check the store's invariants; exit 1 on any problem (store: $LEDGERD_STORE_URL)",
        cmd_audit,
    )
    audit.add_argument(
        "--json", action="store_true", help="print a machine-readable report on stdout"
    )

    dlq = add_command(
        commands,
        "dlq",
        "list the dead-letter topic, or replay it after a fix (log: $LEDGERD_LOG_URL)",
        None,
    )
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    listing = add_command(
        actions, "list", "print the dead letters: partition, offset, error, message", cmd_dlq_list
    )
    listing.add_argument(
        "--limit",
        type=positive_int,
        default=100,
        metavar="N",
        help="print at most this many messages",
    )
    add_command(
        actions,
        "replay",
        "publish the dead letters not yet replayed again to the changes topic",
        cmd_dlq_replay,
    )


def cmd_audit(args: argparse.Namespace) -> int:
    from ledgerd.app import store_from_settings
    from ledgerd.audit import audit

    settings = load_settings()
    store = store_from_settings(settings)

    def progress(what: str, rows: int) -> None:
        if not args.json:
            print(f"  read {rows:,} {what}", file=sys.stderr)

    try:
        report = audit(store, progress)
    finally:
        store.close()
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "accounts": report.accounts,
                    "journal_entries": report.journal_entries,
                    "requests": dict(report.requests),
                    "in_flight": report.in_flight,
                    "outbox_rows": dict(report.outbox_rows),
                    "problem_count": report.problem_count,
                    "problems": report.problems,
                }
            )
        )
    else:
        print(report.summary())
    return 0 if report.ok else 1


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from ledgerd.dlq import list_dead_letters

    settings = load_settings()
    with _event_log(settings) as event_log:
        letters = list_dead_letters(event_log, settings.dlq_topic, args.limit)
    print(f"{'partition':>9} {'offset':>8}  error / message")
    for letter in letters:
        record = letter.record
        print(f"{record.partition:>9} {record.offset:>8}  {letter.error}")
        print(f"{'':>19}{record.value[:200].decode('utf-8', 'replace')}")
    print(f"{len(letters)} messages")
    return 0


def cmd_dlq_replay(_: argparse.Namespace) -> int:
    from ledgerd.dlq import replay_dead_letters

    settings = load_settings()
    with _event_log(settings) as event_log:
        sent = replay_dead_letters(event_log, settings.dlq_topic, settings.topic)
    print(f"replayed {sent} messages from {settings.dlq_topic} to {settings.topic}")
    return 0


@contextmanager
def _event_log(settings: Settings) -> Iterator[EventLog]:
    """The event log with the changes topic and its dead-letter topic, closed after use."""
    from ledgerd.log import open_log

    event_log = open_log(
        settings.log_url, data_dir=settings.data_dir, partition_count=settings.partitions
    )
    try:
        event_log.ensure_topics([settings.topic, settings.dlq_topic])
        yield event_log
    finally:
        event_log.close()
