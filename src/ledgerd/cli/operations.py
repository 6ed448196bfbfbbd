"""``ledgerd audit`` and ``ledgerd dlq``: an operator's checks and repairs."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ledgerd.cli.parsing import Commands, add_command, positive_float, positive_int
from ledgerd.settings import Settings, load_settings, store_location

if TYPE_CHECKING:
    from ledgerd.log import EventLog


def add_commands(commands: Commands) -> None:
    audit = add_command(
        commands,
        "audit",
        "check the store's invariants, each shard's on its own and in total; exit 1 on any"
        " problem (stores: $LEDGERD_STORE_SHARDS, else $LEDGERD_STORE_URL)",
        cmd_audit,
    )
    audit.add_argument(
        "--json", action="store_true", help="print a machine-readable report on stdout"
    )
    audit.add_argument(
        "--max-in-flight-s",
        type=positive_float,
        metavar="SECONDS",
        help="report a transfer debited this long ago and neither credited nor returned"
        " (default: $LEDGERD_AUDIT_MAX_IN_FLIGHT_S, 300)",
    )
    shards = add_command(
        commands,
        "shards",
        "print the shard map: each shard's place as configured and as recorded, its rows,"
        " and which shard owns each partition; exit 1 if a shard disagrees"
        " (stores: $LEDGERD_STORE_SHARDS, else $LEDGERD_STORE_URL)",
        cmd_shards,
    )
    shards.add_argument(
        "--json", action="store_true", help="print the map as one JSON object on stdout"
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
    from ledgerd.audit import audit, audit_shards
    from ledgerd.store.sharded import ShardedStore
    from ledgerd.wiring.backends import store_from_settings

    settings = load_settings()
    store = store_from_settings(settings)
    max_in_flight_s = args.max_in_flight_s or settings.audit_max_in_flight_s

    def progress(what: str, rows: int) -> None:
        if not args.json:
            print(f"  read {rows:,} {what}", file=sys.stderr)

    try:
        if isinstance(store, ShardedStore):
            where = [store_location(url) for url in settings.store_urls]
            shards, report = audit_shards(
                list(zip(where, store.shards, strict=True)),
                store.shard_of_user,
                progress,
                max_in_flight_s=max_in_flight_s,
            )
        else:
            shards, report = [], audit(store, progress, max_in_flight_s=max_in_flight_s)
    finally:
        store.close()
    if args.json:
        document = report.as_json()
        if shards:
            document["shards"] = [
                {"shard_id": s.shard_id, "where": s.where, **s.report.as_json()} for s in shards
            ]
        print(json.dumps(document))
    else:
        for shard in shards:
            print(f"shard {shard.shard_id} ({shard.where}):")
            print(textwrap.indent(shard.report.summary(), "  "))
        if shards:
            print(f"total over {len(shards)} shards:")
        print(report.summary())
    return 0 if report.ok else 1


@dataclass(frozen=True)
class _ShardLine:
    """One shard as ``ledgerd shards`` prints it."""

    shard_id: int
    where: str
    state: str  # "ok", or what differs from the configuration
    partitions: list[int]
    rows: dict[str, int]


def cmd_shards(args: argparse.Namespace) -> int:
    from ledgerd.domain.partitioning import shard_for_partition
    from ledgerd.store.shards import configured_identity, read_identities
    from ledgerd.wiring.backends import shards_from_settings

    settings = load_settings()
    shards = shards_from_settings(settings)
    count = len(shards)
    owner = {p: shard_for_partition(p, count) for p in range(settings.partitions)}
    lines = []
    try:
        for shard, identity in zip(shards, read_identities(shards), strict=True):
            expected = configured_identity(shard.shard_id, count, settings.partitions)
            if identity is None:
                state = "no place recorded (run `ledgerd migrate`)"
            elif identity != expected:
                state = "; ".join(identity.differences(expected))
            else:
                state = "ok"
            migrated = shard.store.schema_version() > 0
            lines.append(
                _ShardLine(
                    shard.shard_id,
                    shard.where,
                    state,
                    [p for p, s in owner.items() if s == shard.shard_id],
                    dict(shard.store.count_rows()) if migrated else {},
                )
            )
    finally:
        for shard in shards:
            shard.store.close()
    ok = all(line.state == "ok" for line in lines)
    if args.json:
        document = {
            "ok": ok,
            "partition_count": settings.partitions,
            "shard_count": count,
            "shards": [asdict(line) for line in lines],
            "shard_of_partition": {str(p): s for p, s in owner.items()},
        }
        print(json.dumps(document))
        return 0 if ok else 1
    print(
        f"{settings.partitions} partitions on {count} shard(s): partition p in shard p mod {count}"
    )
    for line in lines:
        print(f"shard {line.shard_id}: {line.where}: {line.state}")
        print(f"  partitions {', '.join(str(p) for p in line.partitions) or '(none)'}")
        rows = ", ".join(f"{table} {n:,}" for table, n in line.rows.items())
        print(f"  rows {rows or '(no schema yet)'}")
    return 0 if ok else 1


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
