"""``ledgerd bench``: throughput and latency of a stack it starts itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ledgerd.bench.names import DEFAULT_WORKERS, SCENARIOS, WORKER_SCENARIOS, run_label
from ledgerd.cli.parsing import Commands, add_command, positive_int


def add_commands(commands: Commands) -> None:
    bench = add_command(
        commands,
        "bench",
        "measure throughput and latency (starts its own servers)",
        cmd_bench,
    )
    _add_bench_arguments(bench)


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
    problem = _stack_problem(args)
    if problem:
        print(f"ledgerd: {problem}", file=sys.stderr)
        return 2
    worker_counts = api_worker_counts(args.workers, args.stack)
    assert worker_counts is not None  # (_stack_problem said so otherwise)
    results = []
    # Run after run of every scenario (not each scenario three times in a row): each run's
    # echo is measured close in time to that run's other scenarios.
    plan = [
        (run, scenario, workers)
        for run in range(1, args.runs + 1)
        for scenario in args.scenario
        for workers in (worker_counts if scenario in WORKER_SCENARIOS else [1])
    ]
    for run, name, workers in plan:
        suffix = f" [run {run}/{args.runs}]" if args.runs > 1 else ""
        print(f"== {run_label(name, workers)}{suffix}", file=sys.stderr)
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
            shards=args.shards,
            consumers=args.consumers,
            partitions=args.partitions,
            events=args.events == "on",
            idle_window_s=args.idle_window,
            warmup_s=args.warmup,
            journal_rows=args.journal_rows,
        )
        result = scenarios.run(options)
        result["run"] = run
        results.append(result)
        report.annotate(results)
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


def _stack_problem(args: argparse.Namespace) -> str | None:
    """Why the options cannot run on the stack asked for, if they cannot; drops
    apply-large from ``all`` where it cannot run (saying so)."""
    if args.shards > 1 and args.stack != "production":
        return "--shards: the embedded stack is one SQLite store"
    if args.consumers > 1 and args.stack != "production":
        return "--consumers: the embedded stack's data directory belongs to one process"
    if "apply-large" in args.scenario and (args.stack != "production" or args.shards > 1):
        why = "apply-large prefills one MariaDB journal: --stack production, one shard"
        if args.scenario != SCENARIOS:
            return why
        print(f"ledgerd: skipping apply-large ({why})", file=sys.stderr)  # all but it
        args.scenario = [name for name in SCENARIOS if name != "apply-large"]
    if api_worker_counts(args.workers, args.stack) is None:
        return "--workers: the embedded stack runs one API process"
    return None


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


def api_worker_counts(given: list[int] | None, stack: str) -> list[int] | None:
    """The API worker counts to run: as given, or 1 and 2 on the production stack and 1 on
    the embedded one (several API processes need the production stack); None when the
    given counts cannot run on the stack."""
    if given is None:
        return DEFAULT_WORKERS if stack == "production" else [1]
    return given if stack == "production" or given == [1] else None


def _worker_counts(text: str) -> list[int]:
    """``1,2`` -> [1, 2]: the --workers option."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of counts, e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are 1 or more")
    return counts


def _add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """The options of ``ledgerd bench``."""
    bench.add_argument(
        "--scenario",
        type=_scenario_names,
        default=SCENARIOS,
        help=f"all, or some of {', '.join(SCENARIOS)}, comma-separated (default: all)",
    )
    bench.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    bench.add_argument("--accounts", type=int, default=100_000, help="users the load spreads over")
    bench.add_argument("--concurrency", type=int, default=64, help="calls in flight at once")
    bench.add_argument("--batch", type=int, default=1000, help="changes per ChangeBalances call")
    bench.add_argument(
        "--distribution",
        choices=["uniform", "zipf"],
        default="uniform",
        help="how calls pick accounts: evenly, or a few hot ones",
    )
    bench.add_argument(
        "--stack",
        choices=["production", "embedded"],
        default="production",
        help="MariaDB, Kafka and Redis (scripts/services), or SQLite, embedded log and memory",
    )
    bench.add_argument("--apply-changes", type=int, default=300_000, help="preloaded for apply")
    bench.add_argument("--memory-accounts", type=int, default=1_000_000, help="memory: accounts")
    bench.add_argument("--consumer-batch", type=int, default=5000, help="apply: batch size")
    bench.add_argument("--profile", help="apply: py-spy flame graph of the consumer into this dir")
    bench.add_argument(
        "--shards",
        type=positive_int,
        default=1,
        help="production stack: database shards of each scenario's deployment (shard i on"
        " MariaDB server i mod 2 of scripts/services)",
    )
    bench.add_argument(
        "--consumers", type=positive_int, default=1, help="apply: consumer processes (one group)"
    )
    bench.add_argument(
        "--partitions",
        type=positive_int,
        help="apply: the topic's partitions (default: $LEDGERD_PARTITIONS's default, 3)",
    )
    bench.add_argument(
        "--events",
        choices=["on", "off"],
        default="on",
        help="change events (LEDGERD_EVENTS) in the servers started; off shows what publishing"
        " them costs (the events scenario always publishes)",
    )
    bench.add_argument(
        "--runs",
        type=positive_int,
        default=1,
        help="run the scenarios this many times (each run in turn); reports give the median"
        " and the spread",
    )
    bench.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of each call scenario's load (echo, read, change-*) run before its"
        " measured window, then drained; not counted (0: none)",
    )
    bench.add_argument(
        "--idle-window",
        type=float,
        default=3.0,
        help="seconds the backends' idle CPU is sampled before each scenario, then subtracted"
        " from their CPU per operation (0: nothing subtracted)",
    )
    bench.add_argument(
        "--journal-rows",
        type=positive_int,
        default=5_000_000,
        help="apply-large: journal rows written into the store before the consumer starts",
    )
    bench.add_argument(
        "--one-process", action="store_true", help="production: every role in one process"
    )
    bench.add_argument(
        "--workdir", default="./data/bench", help="the servers' data directories and logs"
    )
    bench.add_argument(
        "--workers",
        type=_worker_counts,
        default=None,
        help=f"API worker processes for {' and '.join(WORKER_SCENARIOS)}, each count a run"
        f" (default: {','.join(map(str, DEFAULT_WORKERS))} on the production stack, 1 on the"
        " embedded one)",
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
