"""``ledgerd serve`` and ``ledgerd migrate``: run the server, prepare its store."""

from __future__ import annotations

import argparse
import os
import sys

import structlog

from ledgerd.cli.exit_codes import ExitCode
from ledgerd.cli.parsing import Commands, add_command
from ledgerd.errors import LedgerError, MissingExtra
from ledgerd.logs import configure_logging
from ledgerd.settings import Settings, load_settings


def add_commands(commands: Commands) -> None:
    serve = add_command(
        commands,
        "serve",
        "run the server (settings from the LEDGERD_* environment variables)",
        cmd_serve,
    )
    serve.add_argument(
        "--api-workers",
        type=int,
        metavar="N",
        help="serve the API from N worker processes on one port (sets LEDGERD_API_WORKERS;"
        " default: $LEDGERD_API_WORKERS, else 1)",
    )
    add_command(
        commands,
        "migrate",
        "create or upgrade the store's schema and record each shard's place in the shard map"
        " (stores: $LEDGERD_STORE_SHARDS, else $LEDGERD_STORE_URL; partitions:"
        " $LEDGERD_PARTITIONS)",
        cmd_migrate,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from ledgerd.api.calls import configure_access_log
    from ledgerd.app import serve
    from ledgerd.runtime import loops

    if args.api_workers is not None:
        # Through the variable, so it is validated like one and the workers inherit it.
        os.environ["LEDGERD_API_WORKERS"] = str(args.api_workers)
    settings = load_settings()
    worker = settings.api_worker_index
    configure_logging(settings.log_level, fields={"api_worker": worker} if worker else None)
    configure_access_log(settings.access_log, settings.log_level)
    try:
        return loops.run(serve(settings), settings.event_loop)
    except MissingExtra:
        raise  # refused as configured, like a bad setting: main's plain line and exit 2
    except LedgerError as exc:
        # An expected failure (a backend down at start) ends in one line, as for every
        # command; from here on, stderr carries only JSON, so it is a log line.
        log = structlog.get_logger("ledgerd.cli")
        log.error("ledgerd cannot serve", error=f"{type(exc).__name__}: {exc}")
        return ExitCode.ERROR


def cmd_migrate(_: argparse.Namespace) -> int:
    from ledgerd.errors import SchemaTooNew
    from ledgerd.store.shards import prepare_shards
    from ledgerd.wiring.backends import shards_from_settings

    settings = load_settings()
    shards = shards_from_settings(settings)
    try:
        changes = prepare_shards(shards, settings.partitions)
    except SchemaTooNew as exc:
        print(f"ledgerd: {exc}", file=sys.stderr)
        return 1
    finally:
        for shard in shards:
            shard.store.close()
    for shard, change in zip(shards, changes, strict=True):
        # One shard prints as before shards existed; several name each one.
        prefix = f"shard {shard.shard_id} of {len(shards)}: " if len(shards) > 1 else ""
        print(f"{prefix}schema version {change.before} -> {change.after}: {shard.where}")
    print(f"topics {', '.join(_create_topics(settings))}: ready")
    return 0


def _create_topics(settings: Settings) -> list[str]:
    """Create the service's topics if missing (clients never create one by using it);
    returns their names.

    Raises:
        LogUnavailable: the log did not answer, or a topic has another partition count.
    """
    from ledgerd.log import open_log
    from ledgerd.wiring.backends import service_topics

    topics = service_topics(settings)
    event_log = open_log(
        settings.log_url, data_dir=settings.data_dir, partition_count=settings.partitions
    )
    try:
        event_log.ensure_topics(topics)
    finally:
        event_log.close()
    return topics
