"""What every scenario shares: its options and result, the servers it starts on the chosen
stack, their stores, and the CPU window over them."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerd.audit import audit
from ledgerd.bench.cpu import CpuMeter, Watched, backend_processes, descendants
from ledgerd.bench.driver import Measurement
from ledgerd.bench.progress import Progress
from ledgerd.bench.teardown import release
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.launch.serve_process import ServerProcess, production_env, services
from ledgerd.store import Store, open_store
from ledgerd.store.sharded import ShardedStore


@dataclass
class Options:
    scenario: str
    duration_s: float = 10.0
    accounts: int = 100_000
    concurrency: int = 64
    batch: int = 1000
    distribution: str = "uniform"
    stack: str = "production"
    workdir: Path = Path("./data/bench")
    apply_changes: int = 300_000
    consumer_batch: int = 5000  # messages per consumer batch in apply (the seed's default is 200)
    profile_dir: Path | None = None  # record the apply consumer with py-spy into this directory
    # Production stack: run the API+relay and the consumer+cache updater as two processes,
    # so the API's event loop does not share one interpreter lock with the consumer.
    split_roles: bool = True
    memory_accounts: int = 1_000_000  # accounts cached by the memory scenario
    workers: int = 1  # API worker processes asked for (LEDGERD_API_WORKERS)
    # Database shards of the production stack (shard i on MariaDB server i mod 2); apply:
    # consumer processes draining the log, and the topic's partitions (None: the default).
    shards: int = 1
    consumers: int = 1
    partitions: int | None = None
    # Change events (LEDGERD_EVENTS) in every server started, but for the events scenario,
    # which measures the publisher: off shows what the publisher costs the other figures.
    events: bool = True
    # Seconds the backends' idle CPU rate is sampled before the scenario (0: not subtracted).
    idle_window_s: float = 3.0
    # Seconds of the scenario's own load before its measured window (echo, read, change-*):
    # a fresh server's first calls, and the broker's JIT compiling its hot paths anew in
    # each new connection's shape, are start-up costs, not what an operation costs.
    warmup_s: float = 3.0
    # apply-large: journal rows written straight into the store before the consumer starts.
    journal_rows: int = 5_000_000


@dataclass
class Ran:
    """What a scenario measured: the callers, the audit, figures of its own."""

    measured: Measurement
    audit: dict[str, Any] | None = None
    figures: dict[str, Any] = field(default_factory=dict)


# What a scenario module's ``run`` is: the registry (scenarios.run) maps names to these.
Runner = Callable[[Options, Accounts, ChangeFactory, CpuMeter], Ran]


def stack_env(options: Options) -> dict[str, str]:
    """Settings of a fresh deployment on the chosen stack."""
    env = production_env(shards=options.shards) if options.stack == "production" else {}
    if options.partitions is not None:
        env["LEDGERD_PARTITIONS"] = str(options.partitions)
    env["LEDGERD_EVENTS"] = "true" if options.events else "false"
    return env


def start_server(options: Options, name: str, env: dict[str, str]) -> ServerProcess:
    return ServerProcess(options.workdir / f"{name}-{time.time_ns()}", env).start(timeout_s=60)


def api_env(options: Options) -> dict[str, str]:
    """Settings of a server that answers the API."""
    return {"LEDGERD_API_WORKERS": str(options.workers)}


def api_processes(server: ServerProcess) -> int:
    """Processes serving the API: shows whether the workers setting took effect."""
    if server.process is None:
        return 0
    seen = len(descendants(server.process.pid))
    if seen < server_workers(server):
        sys.stderr.write(
            f"  warning: {server_workers(server)} API workers asked for, {seen} process(es)"
            " seen: this server ignores LEDGERD_API_WORKERS\n"
        )
    return seen


def server_workers(server: ServerProcess) -> int:
    return int(server.env.get("LEDGERD_API_WORKERS", "1"))


def store_url(server: ServerProcess) -> str:
    return server.env.get("LEDGERD_STORE_URL") or f"sqlite:///{server.data_dir / 'ledgerd.sqlite'}"


def server_store(server: ServerProcess) -> Store:
    """The store a server writes: its database, or every shard of it."""
    shards = server.env.get("LEDGERD_STORE_SHARDS", "")
    if "," in shards:
        partitions = int(server.env.get("LEDGERD_PARTITIONS", "3"))
        return ShardedStore([open_store(url) for url in shards.split(",")], partitions)
    return open_store(shards or store_url(server))


def settle_and_audit(store: Store, timeout_s: float = 600.0) -> dict[str, Any]:
    """Wait until no request lacks an outcome, then audit the whole store; closes it."""
    try:
        deadline = time.monotonic() + timeout_s
        while sum(store.count_unfinished().values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        report = audit(store)
    finally:
        store.close()
    return {"ok": report.ok, "problems": report.problems, "in_flight": report.in_flight,
            "journal_entries": report.journal_entries}  # fmt: skip


def _on(env: dict[str, str], key: str) -> bool:
    return env.get(key, "true").lower() not in ("false", "0", "no")


def role_name(env: dict[str, str]) -> str:
    """A server's name in the CPU figures: ``ledgerd`` when it runs every role, else the
    roles it runs (``ledgerd api+relay+cache``)."""
    roles = [
        role
        for key, role in (
            ("LEDGERD_START_API", "api"),
            ("LEDGERD_START_RELAY", "relay"),
            ("LEDGERD_START_CONSUMER", "consumer"),
            ("LEDGERD_START_CACHE_UPDATER", "cache"),
        )
        if _on(env, key)
    ]
    return "ledgerd" if len(roles) == 4 else "ledgerd " + "+".join(roles)


def watched(servers: Sequence[ServerProcess]) -> list[Watched]:
    """The servers' processes (with their API workers) for the CPU window."""
    return [
        Watched(role_name(server.env), server.process.pid, tree=True)
        for server in servers
        if server.process is not None
    ]


def backend_urls(options: Options) -> list[str]:
    """The backends a scenario's deployment uses on this machine (none when embedded)."""
    if options.stack != "production" or options.scenario == "echo":
        return []
    mysql = [services.mysql_server_url()]
    if options.shards > 1:
        mysql.append(services.mysql2_server_url())
    if options.scenario == "baseline-sql":
        return mysql
    return [*mysql, f"kafka://{services.kafka_bootstrap()}", services.redis_url()]


def cpu_meter(options: Options) -> CpuMeter:
    """The scenario's meter, over the backends it uses, their idle rate measured now."""
    meter = CpuMeter(backend_processes(backend_urls(options)))
    meter.measure_idle(options.idle_window_s)
    return meter


def start_deployment(options: Options, name: str) -> list[ServerProcess]:
    """The servers of one scenario; the first one serves the API."""
    env = stack_env(options)
    if not (options.split_roles and options.stack == "production"):
        return [start_server(options, name, {**env, **api_env(options)})]
    api_only = {**env, **api_env(options), "LEDGERD_START_CONSUMER": "false"}
    api = start_server(options, f"{name}-api", api_only)
    consumer_env = {**env, "LEDGERD_START_API": "false", "LEDGERD_START_RELAY": "false"}
    return [api, start_server(options, f"{name}-consumer", consumer_env)]


def stop_all(servers: list[ServerProcess]) -> None:
    """Stop the servers of one deployment, then remove what it left on the backends."""
    for server in servers:
        server.stop(timeout_s=120)
    if servers:
        release(servers[0].env)


# A counter is read over HTTP from the measured process (its /metrics page), and rendering
# that page is work the process does while it is measured: twice a second keeps it under a
# percent of a consumer's CPU while timing the run to within half a second.
COUNTER_POLL_S = 0.5


def watch_counter(read: Callable[[], float], total: int, label: str) -> Measurement:
    """Poll ``read`` until it reaches ``total`` (or 15 minutes pass); the rate from the first
    change seen to the last."""
    first = last = None
    count = 0.0
    deadline = time.monotonic() + 900
    shown = Progress(label)
    while count < total and time.monotonic() < deadline:
        count = read()
        now = time.monotonic()
        if count and first is None:
            first = (now, count)
        last = (now, count)
        shown.update(f"{count:,.0f} / {total:,}")
        time.sleep(COUNTER_POLL_S)
    shown.finish(f"{count:,.0f} / {total:,}")
    measured = Measurement()
    if first is not None and last is not None and last[0] > first[0]:
        measured.operations = int(last[1] - first[1])
        measured.elapsed_s = last[0] - first[0]
    return measured
