"""The ``ledgerd`` command: the server, schema migration and client commands."""

from __future__ import annotations

import os

# gRPC's C core writes its own lines straight to stderr, past Python's logging, so they
# could never be JSON (docs/operations.md, "Logs"); the errors it reports reach ledgerd as
# exceptions, which are logged. An operator's own GRPC_VERBOSITY wins. This must run
# before grpc is first imported, so it sits above the imports.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import ValidationError

from ledgerd.bench.names import DEFAULT_WORKERS, SCENARIOS, WORKER_SCENARIOS, run_label
from ledgerd.logs import configure_logging
from ledgerd.settings import ClientSettings, SettingsError, load_settings

if TYPE_CHECKING:
    from ledgerd.client import LedgerdClient


def _client_settings() -> ClientSettings:
    try:
        return ClientSettings()
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None


def _print(message: Message) -> None:
    print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2))


def cmd_serve(args: argparse.Namespace) -> int:
    from ledgerd.api.calls import configure_access_log
    from ledgerd.app import serve

    if args.api_workers is not None:
        # Through the variable, so it is validated like one and the workers inherit it.
        os.environ["LEDGERD_API_WORKERS"] = str(args.api_workers)
    settings = load_settings()
    worker = settings.api_worker_index
    configure_logging(settings.log_level, fields={"api_worker": worker} if worker else None)
    configure_access_log(settings.access_log, settings.log_level)
    return asyncio.run(serve(settings))


def cmd_migrate(_: argparse.Namespace) -> int:
    from ledgerd.app import store_from_settings
    from ledgerd.errors import SchemaTooNew

    settings = load_settings()
    store = store_from_settings(settings)
    try:
        before = store.schema_version()
        store.migrate()
        after = store.schema_version()
    except SchemaTooNew as exc:
        print(f"ledgerd: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    where = settings.effective_store_url.split("@")[-1]
    print(f"schema version {before} -> {after}: {where}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    import json

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


def cmd_dlq(args: argparse.Namespace) -> int:
    from ledgerd.dlq import list_dead_letters, replay_dead_letters
    from ledgerd.log import open_log

    settings = load_settings()
    event_log = open_log(
        settings.log_url, data_dir=settings.data_dir, partition_count=settings.partitions
    )
    try:
        event_log.ensure_topics([settings.topic, settings.dlq_topic])
        if args.action == "replay":
            sent = replay_dead_letters(event_log, settings.dlq_topic, settings.topic)
            print(f"replayed {sent} messages from {settings.dlq_topic} to {settings.topic}")
            return 0
        letters = list_dead_letters(event_log, settings.dlq_topic, args.limit)
        print(f"{'partition':>9} {'offset':>8}  error / message")
        for letter in letters:
            record = letter.record
            print(f"{record.partition:>9} {record.offset:>8}  {letter.error}")
            print(f"{'':>19}{record.value[:200].decode('utf-8', 'replace')}")
        print(f"{len(letters)} messages")
        return 0
    finally:
        event_log.close()


def cmd_bench(args: argparse.Namespace) -> int:
    from ledgerd.bench import compare, report, scenarios

    old = None
    if args.compare:
        if len(args.compare) > 2:
            print("ledgerd: --compare takes OLD.json, or OLD.json NEW.json", file=sys.stderr)
            return 2
        try:
            runs = [compare.load_results(Path(path)) for path in args.compare]
        except (OSError, ValueError) as exc:
            print(f"ledgerd: --compare: {exc}", file=sys.stderr)
            return 2
        if len(runs) == 2:  # two saved runs: compare them, run nothing
            print(compare.render(compare.compare(runs[0], runs[1])))
            return 0
        old = runs[0]
    results = []
    for name in args.scenario:
        for workers in args.workers if name in WORKER_SCENARIOS else [1]:
            print(f"== {run_label(name, workers)}", file=sys.stderr)
            options = scenarios.Options(
                scenario=name,
                duration_s=args.duration,
                accounts=args.accounts,
                concurrency=args.concurrency,
                batch=args.batch,
                distribution=args.distribution,
                stack=args.stack,
                workdir=Path(args.workdir),
                apply_changes=args.apply_changes,
                consumer_batch=args.consumer_batch,
                profile_dir=Path(args.profile) if args.profile else None,
                split_roles=not args.one_process,
                memory_accounts=args.memory_accounts,
                workers=workers,
            )
            results.append(scenarios.run(options))
            if args.json:  # after each scenario: a failure later keeps what was measured
                report.write_json(Path(args.json), results)
    print(report.table(results))
    for target, measured, verdict in report.ratios(results):
        print(f"{target:<44} {measured:>20}  {verdict}")
    if old is not None:
        ran = {r["scenario"] for r in results}  # scenarios not run this time are no news
        print(f"\ncompared with {args.compare[0]}:")
        print(compare.render(compare.compare([r for r in old if r["scenario"] in ran], results)))
    if args.markdown:
        command = "ledgerd " + " ".join(sys.argv[1:])
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(report.markdown(results, command))
    return 0 if all(r["ok"] for r in results) else 1


def _scenario_names(text: str) -> list[str]:
    """``all`` or ``echo,read`` -> the scenarios to run, in the order given."""
    if text == "all":
        return SCENARIOS
    names = text.split(",")
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown)}; use all or some of {', '.join(SCENARIOS)}"
        )
    return names


def _worker_counts(text: str) -> list[int]:
    """``1,2`` -> [1, 2]: the --workers option."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of counts, e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are 1 or more")
    return counts


def _client(args: argparse.Namespace) -> LedgerdClient:
    """A client for the target, signing with LEDGERD_CLIENT_KEY_ID/_SECRET when set."""
    from ledgerd.client import LedgerdClient

    settings = _client_settings()
    key_id = settings.client_key_id or None
    secret = settings.client_secret or None
    ca = settings.client_tls_ca.read_bytes() if settings.client_tls_ca else None
    return LedgerdClient(
        args.addr or settings.target,
        key_id=key_id,
        secret=secret,
        tls_root_cert=ca,
        timeout_s=args.timeout,
    )


def _call(args: argparse.Namespace, method: str, request: Message) -> int:
    with _client(args) as client:
        try:
            _print(client.call(method, request))
        except grpc.RpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    return _call(
        args, "GetBalance", pb.GetBalanceRequest(user_id=args.user, currency=args.currency)
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
    return _call(args, "ChangeBalance", request)


def cmd_journal(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    request = pb.ListJournalRequest(
        user_id=args.user, currency=args.currency, after_version=args.after, limit=args.limit
    )
    return _call(args, "ListJournal", request)


def cmd_get_change(args: argparse.Namespace) -> int:
    from ledgerd.v1 import balance_pb2 as pb

    return _call(args, "GetChange", pb.GetChangeRequest(request_id=args.request_id))


def cmd_health(args: argparse.Namespace) -> int:
    """Health over gRPC from an API process, or with --probe from any process's /readyz."""
    from ledgerd.v1 import balance_pb2 as pb

    if args.probe is None:
        return _call(args, "HealthCheck", pb.HealthCheckRequest())
    target = args.probe or _client_settings().probe_target
    url = f"http://{target}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (OSError, urllib.error.URLError) as exc:
        print(f"error: UNAVAILABLE: {url}: {exc}", file=sys.stderr)
        return 1
    report = json.loads(body)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report.get("status") == "SERVING" else 1


def _add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """The options of ``ledgerd bench``."""
    bench.add_argument(
        "--scenario",
        type=_scenario_names,
        default=SCENARIOS,
        help=f"all (the default), or some of {', '.join(SCENARIOS)}, comma-separated",
    )
    bench.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    bench.add_argument("--accounts", type=int, default=100_000)
    bench.add_argument("--concurrency", type=int, default=64)
    bench.add_argument("--batch", type=int, default=1000, help="changes per ChangeBalances call")
    bench.add_argument("--distribution", choices=["uniform", "zipf"], default="uniform")
    bench.add_argument("--stack", choices=["production", "embedded"], default="production")
    bench.add_argument("--apply-changes", type=int, default=300_000, help="preloaded for apply")
    bench.add_argument("--memory-accounts", type=int, default=1_000_000, help="memory: accounts")
    bench.add_argument("--consumer-batch", type=int, default=5000, help="apply: batch size")
    bench.add_argument("--profile", help="apply: py-spy flame graph of the consumer into this dir")
    bench.add_argument(
        "--one-process", action="store_true", help="production: every role in one process"
    )
    bench.add_argument("--workdir", default="./data/bench")
    bench.add_argument(
        "--workers",
        type=_worker_counts,
        default=DEFAULT_WORKERS,
        help=f"API worker processes for {' and '.join(WORKER_SCENARIOS)}, each count a run"
        " (default 1,2)",
    )
    bench.add_argument(
        "--json", help="write the result (one row: an object) or results (a list) here"
    )
    bench.add_argument("--markdown", help="write a markdown report (e.g. docs/benchmarks.md)")
    bench.add_argument(
        "--compare",
        nargs="+",
        metavar="OLD.json",
        help="print each figure's ratio to a saved --json run; with a second file"
        " (OLD.json NEW.json) compare the two and run nothing",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledgerd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (settings from LEDGERD_* variables)")
    serve.add_argument(
        "--api-workers",
        type=int,
        metavar="N",
        help="serve the API from N worker processes on one port (sets LEDGERD_API_WORKERS)",
    )
    commands.add_parser("migrate", help="create or upgrade the store's schema")
    audit = commands.add_parser("audit", help="check the store's invariants; exit 1 on any")
    audit.add_argument("--json", action="store_true", help="machine-readable report")

    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--addr",
            default=None,
            help="server host:port (default: LEDGERD_ADDR, else the local LEDGERD_GRPC_ADDR)",
        )
        sub.add_argument("--timeout", type=float, default=15.0, help="deadline in seconds")
        return sub

    balance = client("balance", "show a user's balances")
    balance.add_argument("user", type=int)
    balance.add_argument("currency", nargs="?", default="")

    change = client("change", "change a balance")
    change.add_argument(
        "type", choices=["deposit", "withdraw", "freeze", "unfreeze"], type=str.lower
    )
    change.add_argument("user", type=int)
    change.add_argument("currency")
    change.add_argument("amount")
    change.add_argument("--request-id", help="idempotency key (default: a new UUID)")
    change.add_argument("--memo", default="")
    change.add_argument("--wait", action="store_true", help="answer once applied or rejected")

    journal = client("journal", "list an account's journal")
    journal.add_argument("user", type=int)
    journal.add_argument("currency")
    journal.add_argument("--after", type=int, default=0, help="only versions after this one")
    journal.add_argument("--limit", type=int, default=100)

    get_change = client("get-change", "show one change request")
    get_change.add_argument("request_id")

    health = client("health", "show a process's health (exit 1 unless SERVING)")
    health.add_argument(
        "--probe",
        nargs="?",
        const="",
        default=None,
        metavar="HOST:PORT",
        help="ask the operations port's /readyz instead (any process, whatever its roles; "
        "default: the local LEDGERD_METRICS_ADDR)",
    )

    dlq = commands.add_parser("dlq", help="list the dead-letter topic, or replay it after a fix")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--limit", type=int, default=100, help="list: at most this many")

    bench = commands.add_parser(
        "bench", help="measure throughput and latency (starts its own servers)"
    )
    _add_bench_arguments(bench)
    return parser


COMMANDS = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "audit": cmd_audit,
    "balance": cmd_balance,
    "change": cmd_change,
    "journal": cmd_journal,
    "get-change": cmd_get_change,
    "health": cmd_health,
    "bench": cmd_bench,
    "dlq": cmd_dlq,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"ledgerd: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
