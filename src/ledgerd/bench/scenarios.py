"""The benchmark scenarios; each starts its own servers and returns one result row."""

from __future__ import annotations

import asyncio
import itertools
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ledgerd.audit import audit
from ledgerd.bench.baseline import run_baseline
from ledgerd.bench.cpu import CpuMeter, Watched, backend_processes, descendants
from ledgerd.bench.driver import Measurement, run_callers
from ledgerd.bench.names import SCENARIOS, run_label
from ledgerd.bench.pipeline import PipelineProbe, follow_to_the_end
from ledgerd.bench.progress import Progress
from ledgerd.bench.transfers import TransferFactory, count_applied, fund, transfer_calls
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.store import Store, open_store
from ledgerd.store.sharded import ShardedStore
from ledgerd.testing.serve_process import (
    ServerProcess,
    free_port,
    fresh_database_url,
    production_env,
    services,
)
from ledgerd.v1 import balance_pb2 as pb

SERVICE = "/ledgerd.v1.BalanceService/"
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 64 << 20)]
CONNECTIONS = 8  # client connections per measured scenario


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
    # apply-large: journal rows written straight into the store before the consumer starts.
    journal_rows: int = 5_000_000


@dataclass
class Ran:
    """What a scenario measured: the callers, the audit, figures of its own."""

    measured: Measurement
    audit: dict[str, Any] | None = None
    figures: dict[str, Any] = field(default_factory=dict)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        # Other work on the machine when the scenario started (the figures' context).
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


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


# apply-large audits its store only up to this journal: the audit's keyset scan of the
# journal, (user_id, currency, version) > (?, ?, ?), is not an index range on MariaDB, so
# each page reads the table from its start (quadratic: hours at 5M rows).
AUDITED_JOURNAL_ROWS = 200_000
AUDIT_SKIPPED = (
    f"not audited: a journal over {AUDITED_JOURNAL_ROWS:,} rows (the audit's journal scan"
    " is quadratic on MariaDB); every accepted change has an outcome"
)


def settle(store: Store, timeout_s: float = 600.0) -> bool:
    """Wait until no request lacks an outcome; whether that happened in time. Closes it."""
    try:
        deadline = time.monotonic() + timeout_s
        while sum(store.count_unfinished().values()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True
    finally:
        store.close()


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


async def _drive(
    options: Options,
    target: str,
    make_call: Callable[[Any], Callable[[int], Any]],
    label: str,
    concurrency: int,
) -> Measurement:
    # Several connections, as several clients would open: with SO_REUSEPORT the kernel
    # spreads connections (not calls) over API worker processes, and one channel is one
    # connection. Echo gets the same, so the ratios compare like with like.
    options_ = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options_) for _ in range(CONNECTIONS)]
    try:
        calls = [make_call(channel) for channel in channels]

        async def call(index: int) -> int:
            return int(await calls[index % len(calls)](index))

        return await run_callers(
            call, concurrency=concurrency, duration_s=options.duration_s, label=label
        )
    finally:
        for channel in channels:
            await channel.close(None)


def _single_changes(factory: ChangeFactory) -> Callable[[Any], Callable[[int], Any]]:
    def make(channel: Any) -> Callable[[int], Any]:
        stub = channel.unary_unary(
            SERVICE + "ChangeBalance",
            request_serializer=pb.ChangeBalanceRequest.SerializeToString,
            response_deserializer=pb.ChangeResult.FromString,
        )

        async def call(_: int) -> int:
            await stub(factory.one(), timeout=30)
            return 1

        return call

    return make


def _batches(factory: ChangeFactory, size: int) -> Callable[[Any], Callable[[int], Any]]:
    def make(channel: Any) -> Callable[[int], Any]:
        stub = channel.unary_unary(
            SERVICE + "ChangeBalances",
            request_serializer=pb.ChangeBalancesRequest.SerializeToString,
            response_deserializer=pb.ChangeBalancesResponse.FromString,
        )

        async def call(_: int) -> int:
            await stub(factory.batch(size), timeout=60)
            return size

        return call

    return make


def _reads(accounts: Accounts) -> Callable[[Any], Callable[[int], Any]]:
    import random

    rng = random.Random(7)

    def make(channel: Any) -> Callable[[int], Any]:
        stub = channel.unary_unary(
            SERVICE + "GetBalance",
            request_serializer=pb.GetBalanceRequest.SerializeToString,
            response_deserializer=pb.GetBalanceResponse.FromString,
        )

        async def call(_: int) -> int:
            await stub(pb.GetBalanceRequest(user_id=accounts.pick(rng), currency="USD"), timeout=30)
            return 1

        return call

    return make


UNITS = {
    "echo": "calls/s",
    "read": "calls/s",
    "memory": "bytes/account",
    "transfer": "transfers/s",
    "events": "events/s",
}
Runner = Callable[[Options, Accounts, ChangeFactory, CpuMeter], Ran]

# Scenarios without a CPU figure: memory measures bytes, not work per operation.
WITHOUT_CPU = ("memory",)


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


def _echo(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-m", "ledgerd.bench.echo", str(port)])
    try:
        _wait_listening(echo, port, timeout_s=30)
        target = f"127.0.0.1:{port}"
        calls = _single_changes(factory)
        meter.start([Watched("echo server", echo.pid)])
        measured = asyncio.run(_drive(options, target, calls, "echo", options.concurrency))
        meter.stop(measured.operations)
        return Ran(measured)
    finally:
        echo.terminate()
        echo.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, timeout_s: float) -> None:
    """Until ``process`` accepts connections on ``port`` (a loaded machine may take more
    than a second to start Python and gRPC)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the echo server exited ({process.returncode}) before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the echo server not listening after {timeout_s} s") from None
            time.sleep(0.1)


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
    for server in servers:
        server.stop(timeout_s=120)


def _changes(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
    """A change load, followed until every accepted change has an outcome, then audited."""
    servers = start_deployment(options, options.scenario)
    server = servers[0]
    probe: PipelineProbe | None = None
    try:
        probe = PipelineProbe(server.env, server.data_dir)
        if options.scenario == "change-single":
            calls, concurrency = _single_changes(factory), options.concurrency
        else:
            calls, concurrency = (
                _batches(factory, options.batch),
                max(1, min(options.concurrency, 8)),
            )
        probe.consumer_lag()  # connects to the log now, not in the moment the load stops
        label = run_label(options.scenario, options.workers)
        meter.start(watched(servers))
        measured = asyncio.run(_drive(options, server.target, calls, label, concurrency))
        processes = api_processes(server)
        end_to_end = follow_to_the_end(
            probe,
            accepted=measured.operations,
            load_started_at_s=measured.started_at_s,
            load_elapsed_s=measured.elapsed_s,
        )
        # Until every accepted change has an outcome: what applying them cost counts too.
        meter.stop(measured.operations)
        figures = {**end_to_end.as_dict(), "api_processes": processes}
        return Ran(measured, settle_and_audit(server_store(server)), figures)
    finally:
        if probe is not None:
            probe.close()
        stop_all(servers)


def _transfer(options: Options, _: Accounts, __: ChangeFactory, meter: CpuMeter) -> Ran:
    """Users funded first (applied before the clock starts), then Transfer calls between
    random pairs, followed until every transfer's credit applied (both legs, each on its
    user's partition), then audited; a sample is checked APPLIED through GetTransfer."""
    servers = start_deployment(options, "transfer")
    server = servers[0]
    probe: PipelineProbe | None = None
    try:
        probe = PipelineProbe(server.env, server.data_dir)
        users = min(options.accounts, 10_000)
        asyncio.run(fund(server.target, users))
        if not probe.wait_for_outcomes(timeout_s=300):
            raise RuntimeError("the funding deposits did not all apply within 300 s")
        factory = TransferFactory(users)
        probe.consumer_lag()  # connects to the log now, not in the moment the load stops
        calls = transfer_calls(factory)
        meter.start(watched(servers))
        measured = asyncio.run(
            _drive(options, server.target, calls, "transfer", options.concurrency)
        )
        end_to_end = follow_to_the_end(
            probe,
            accepted=measured.operations,
            load_started_at_s=measured.started_at_s,
            load_elapsed_s=measured.elapsed_s,
        )
        meter.stop(measured.operations)
        sample = factory.sample()
        figures = {
            **end_to_end.as_dict(),
            "users": users,
            "sampled_applied": f"{count_applied(server.target, sample)}/{len(sample)}",
        }
        return Ran(measured, settle_and_audit(server_store(server)), figures)
    finally:
        if probe is not None:
            probe.close()
        stop_all(servers)


def _read(options: Options, _: Accounts, __: ChangeFactory, meter: CpuMeter) -> Ran:
    accounts = Accounts(min(options.accounts, 10_000))
    # One process with every role. GetBalance reads the shared cache (Redis on the
    # production stack), never the consumer's memory: that runs ahead of the cache, and
    # a read through another process must not see an older version afterwards.
    servers = [start_server(options, "read", {**stack_env(options), **api_env(options)})]
    server = servers[0]
    try:
        preload = Options(**{**options.__dict__, "duration_s": 3.0})
        asyncio.run(
            _drive(preload, server.target, _batches(ChangeFactory(accounts), 1000), "preload", 4)
        )
        settle_and_audit(server_store(server))
        # Each account read once first: a balance enters the shared cache when a read
        # misses it (or at a full sync), never from the change feed, which may replay old
        # versions. Measured are reads of a warm cache, what a service that runs sees.
        asyncio.run(_read_each_once(server.target, accounts))
        reads = _reads(accounts)
        label = run_label(options.scenario, options.workers)
        meter.start(watched(servers))
        measured = asyncio.run(_drive(options, server.target, reads, label, options.concurrency))
        meter.stop(measured.operations)
        return Ran(measured, figures={"api_processes": api_processes(server)})
    finally:
        stop_all(servers)


async def _read_each_once(target: str, accounts: Accounts, concurrency: int = 64) -> None:
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = channel.unary_unary(
            SERVICE + "GetBalance",
            request_serializer=pb.GetBalanceRequest.SerializeToString,
            response_deserializer=pb.GetBalanceResponse.FromString,
        )
        users = iter(range(1, accounts.count + 1))

        async def reader() -> None:
            for user_id in users:
                await stub(pb.GetBalanceRequest(user_id=user_id, currency="USD"), timeout=30)

        await asyncio.gather(*(reader() for _ in range(concurrency)))


def _baseline(options: Options, accounts: Accounts, _: ChangeFactory, meter: CpuMeter) -> Ran:
    # A database of its own (made by the migration); the benchmark never drops databases.
    url = fresh_database_url()
    # The client does the work here (in this process, not counted): MariaDB's share only.
    meter.start()
    measured = run_baseline(url, accounts, threads=8, duration_s=options.duration_s)
    meter.stop(measured.operations)
    return Ran(measured)


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _memory(options: Options, _: Accounts, __: ChangeFactory, ___: CpuMeter) -> Ran:
    """Resident memory per cached account: one process (API, consumer, cache) after one
    deposit into each of memory_accounts accounts. ``operations`` holds the bytes per account."""
    server = start_server(options, "memory", stack_env(options))
    try:
        assert server.process is not None
        before = _rss_bytes(server.process.pid)
        users = iter(range(1, options.memory_accounts + 1))
        prefix = f"m{time.time_ns()}-"

        shown = Progress("memory preload")

        async def load() -> None:
            async with grpc.aio.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
                stub = channel.unary_unary(
                    SERVICE + "ChangeBalances",
                    request_serializer=pb.ChangeBalancesRequest.SerializeToString,
                    response_deserializer=pb.ChangeBalancesResponse.FromString,
                )

                async def worker() -> None:
                    while batch := list(itertools.islice(users, 1000)):
                        changes = [
                            pb.ChangeBalanceRequest(
                                request_id=f"{prefix}{user}",
                                user_id=user,
                                currency="USD",
                                type=pb.DEPOSIT,
                                amount="1",
                            )
                            for user in batch
                        ]
                        await stub(pb.ChangeBalancesRequest(changes=changes), timeout=60)
                        shown.update(f"{batch[-1]:,} accounts")

                await asyncio.gather(*(worker() for _ in range(4)))
                shown.finish(f"{options.memory_accounts:,} accounts")

        asyncio.run(load())
        audited = settle_and_audit(server_store(server))
        after = _rss_bytes(server.process.pid)
    finally:
        server.stop(timeout_s=300)
    measured = Measurement(operations=(after - before) // max(options.memory_accounts, 1), calls=1)
    measured.elapsed_s = 1.0
    audited["rss_bytes"] = after
    audited["accounts"] = options.memory_accounts
    return Ran(measured, audited)


def run(options: Options) -> dict[str, Any]:
    """Run one scenario; returns its result (throughput, latencies, audit, parameters)."""
    runners: dict[str, Runner] = {
        "echo": _echo,
        "change-single": _changes,
        "change-batch": _changes,
        "hot": _changes,
        "read": _read,
        "apply": _apply,
        "apply-large": _apply,
        "baseline-sql": _baseline,
        "memory": _memory,
        "transfer": _transfer,
        "events": _events,
    }
    if options.scenario not in runners:
        raise ValueError(f"unknown scenario {options.scenario!r}; one of {', '.join(SCENARIOS)}")
    options.workdir.mkdir(parents=True, exist_ok=True)
    distribution = "zipf" if options.scenario == "hot" else options.distribution
    accounts = Accounts(options.accounts, distribution)
    meter = CpuMeter() if options.scenario in WITHOUT_CPU else cpu_meter(options)
    ran = runners[options.scenario](options, accounts, ChangeFactory(accounts), meter)
    measured, audited = ran.measured, ran.audit
    return {
        "scenario": options.scenario,
        # API worker processes asked for; baseline-sql runs no ledgerd server.
        "workers": None if options.scenario == "baseline-sql" else options.workers,
        "parameters": {
            "duration_s": options.duration_s,
            "accounts": options.accounts,
            "concurrency": options.concurrency,
            "batch": options.batch,
            "distribution": distribution,
            "stack": options.stack,
            "events": options.events or options.scenario == "events",
            "split_roles": options.split_roles
            and options.stack == "production"
            and options.scenario in ("change-single", "change-batch", "hot", "transfer"),
            **(
                {
                    "consumer_batch": options.consumer_batch,
                    "shards": options.shards,
                    "consumers": options.consumers,
                    "partitions": options.partitions or 3,
                }
                if options.scenario == "apply"
                else {
                    "consumer_batch": options.consumer_batch,
                    "apply_changes": options.apply_changes,
                    "journal_rows": options.journal_rows,
                }
                if options.scenario == "apply-large"
                else {"apply_changes": options.apply_changes}
                if options.scenario == "events"
                else {}
            ),
        },
        "machine": machine(),
        "unit": UNITS.get(options.scenario, "changes/s"),
        "throughput": round(measured.rate, 1),
        "operations": measured.operations,
        "calls": measured.calls,
        "elapsed_s": round(measured.elapsed_s, 2),
        "p50_ms": round(measured.percentile_ms(0.50), 2),
        "p99_ms": round(measured.percentile_ms(0.99), 2),
        "p100_ms": round(measured.percentile_ms(1.0), 2),
        "errors": dict(measured.errors),
        **ran.figures,
        **({"cpu": meter.figures.as_dict()} if meter.figures is not None else {}),
        "audit": audited,
        "ok": not measured.errors
        and (audited is None or audited["ok"])
        and ran.figures.get("settled", True)
        and _all_sampled_applied(ran.figures),
    }


def _all_sampled_applied(figures: dict[str, Any]) -> bool:
    """Whether every transfer looked up after a run was APPLIED ("n/n"), if any was."""
    applied, _, sampled = str(figures.get("sampled_applied", "0/0")).partition("/")
    return applied == sampled


def _profile(options: Options, server: ServerProcess) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server into a flame graph, when asked for."""
    if options.profile_dir is None or server.process is None:
        return None
    options.profile_dir.mkdir(parents=True, exist_ok=True)
    # Collapsed stacks: one line per stack with its sample count (flamegraph.pl input).
    output = options.profile_dir / f"{options.scenario}.folded"
    # py-spy comes with the dev extra, next to this interpreter when not on PATH.
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "-p", str(server.process.pid), "-o", str(output), "-f", "raw"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _applied(consumers: Sequence[ServerProcess]) -> float:
    """Changes decided (applied or rejected) by the consumers so far."""
    return sum(consumer.metric("ledgerd_changes_total") for consumer in consumers)


def _watch_applied(consumers: Sequence[ServerProcess], total: int) -> Measurement:
    """Poll the consumers' applied count; the rate from the first change to the last."""
    first = last = None
    applied = 0.0
    deadline = time.monotonic() + 900
    shown = Progress("apply")
    while applied < total and time.monotonic() < deadline:
        applied = _applied(consumers)
        now = time.monotonic()
        if applied and first is None:
            first = (now, applied)
        last = (now, applied)
        shown.update(f"{applied:,.0f} / {total:,} applied")
        time.sleep(0.2)
    shown.finish(f"{applied:,.0f} / {total:,} applied")
    measured = Measurement()
    if first is not None and last is not None and last[0] > first[0]:
        measured.operations = int(last[1] - first[1])
        measured.elapsed_s = last[0] - first[0]
    return measured


def _apply(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
    """Preload the log (consumer off), then time a consumer draining it into the store.

    apply-large first writes ``journal_rows`` of history into the store's journal (straight
    into MariaDB, bench.prefill), for the accounts the load then changes."""
    deployment = stack_env(options)
    api = start_server(
        options, f"{options.scenario}-api", {**deployment, "LEDGERD_START_CONSUMER": "false"}
    )
    consumers: list[ServerProcess] = []
    try:
        total = 0
        if options.scenario == "apply-large":
            _prefill(store_url(api), options)

        async def preload() -> None:
            nonlocal total
            async with grpc.aio.insecure_channel(api.target, options=CHANNEL_OPTIONS) as channel:
                stub = channel.unary_unary(
                    SERVICE + "ChangeBalances",
                    request_serializer=pb.ChangeBalancesRequest.SerializeToString,
                    response_deserializer=pb.ChangeBalancesResponse.FromString,
                )
                while total < options.apply_changes:
                    await asyncio.gather(
                        *(stub(factory.batch(options.batch), timeout=60) for _ in range(4))
                    )
                    total += 4 * options.batch

        asyncio.run(preload())
        url = store_url(api)
        store = server_store(api)
        # Until the relay has published everything: the log holds the whole load.
        while api.metric('ledgerd_outbox_requests_total{status="sent"}') < total:
            time.sleep(0.5)
        api.stop(timeout_s=120)
        # The backends' idle rate again, now, after the preload: the closer to the window
        # the better on a machine others share.
        meter.measure_idle(options.idle_window_s)
        consumer_env = {
            **deployment,
            "LEDGERD_START_API": "false",
            "LEDGERD_START_RELAY": "false",
            # The embedded stack shares the API's data directory (store and log files).
            "LEDGERD_DATA_DIR": str(api.data_dir),
            "LEDGERD_CONSUMER_BATCH_MAX_MESSAGES": str(options.consumer_batch),
        }
        if "LEDGERD_STORE_SHARDS" not in deployment:
            consumer_env["LEDGERD_STORE_URL"] = url
        # Several consumers share the partitions (one Kafka group); launched together, so
        # the group most likely settles before the first batch instead of moving
        # partitions mid-run.
        consumers = [
            ServerProcess(options.workdir / f"apply-consumer{i}-{time.time_ns()}", consumer_env)
            for i in range(options.consumers)
        ]
        for process in consumers:
            process.launch()
        for process in consumers:
            process.wait_serving(timeout_s=60)
        profiler = _profile(options, consumers[0])
        meter.start(watched(consumers))
        applied_before = _applied(consumers)
        measured = _watch_applied(consumers, total)
        meter.stop(int(_applied(consumers) - applied_before))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait()
        if options.scenario == "apply-large" and options.journal_rows > AUDITED_JOURNAL_ROWS:
            settled = settle(store)
            return Ran(measured, figures={"settled": settled, "audit_skipped": AUDIT_SKIPPED})
        return Ran(measured, settle_and_audit(store))
    finally:
        for process in consumers:
            process.stop(timeout_s=120)
        api.stop(timeout_s=120)


def _prefill(url: str, options: Options) -> None:
    from ledgerd.bench.prefill import prefill

    shown = Progress("journal prefill")
    rows = options.journal_rows
    prefill(url, rows, options.accounts, progress=lambda n: shown.update(f"{n:,} / {rows:,} rows"))
    shown.finish(f"{rows:,} rows")


def _events(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
    """Change events out: apply ``apply_changes`` changes (the usual mix) with events off,
    then time a consumer process (events on) publishing that journal (one event per applied
    change) to balance-events, from its first event to the last (docs/events.md).
    ``operations`` is the events published in that time."""
    deployment = stack_env(options)
    loader = start_server(options, "events-load", {**deployment, "LEDGERD_EVENTS": "false"})
    publisher: ServerProcess | None = None
    try:
        total = 0

        async def preload() -> None:
            nonlocal total
            async with grpc.aio.insecure_channel(loader.target, options=CHANNEL_OPTIONS) as channel:
                stub = channel.unary_unary(
                    SERVICE + "ChangeBalances",
                    request_serializer=pb.ChangeBalancesRequest.SerializeToString,
                    response_deserializer=pb.ChangeBalancesResponse.FromString,
                )
                shown = Progress("events preload")
                while total < options.apply_changes:
                    await asyncio.gather(
                        *(stub(factory.batch(options.batch), timeout=60) for _ in range(4))
                    )
                    total += 4 * options.batch
                    shown.update(f"{total:,} changes")
                shown.finish(f"{total:,} changes")

        asyncio.run(preload())
        url = store_url(loader)
        # Every change decided; the applied ones are the journal, one event each.
        deadline = time.monotonic() + 900
        while loader.metric("ledgerd_changes_total") < total and time.monotonic() < deadline:
            time.sleep(0.5)
        applied = int(loader.metric('ledgerd_changes_total{outcome="applied"}'))
        loader.stop(timeout_s=120)
        publisher_env = {
            **deployment,
            "LEDGERD_START_API": "false",
            "LEDGERD_START_RELAY": "false",
            # The embedded stack shares the loader's data directory (store and log files).
            "LEDGERD_DATA_DIR": str(loader.data_dir),
            "LEDGERD_EVENTS": "true",  # what this scenario measures, whatever --events says
        }
        if "LEDGERD_STORE_SHARDS" not in deployment:
            publisher_env["LEDGERD_STORE_URL"] = url
        publisher = ServerProcess(
            options.workdir / f"events-publisher-{time.time_ns()}", publisher_env
        ).start(timeout_s=60)
        meter.start(watched([publisher]))
        published_before = int(publisher.metric("ledgerd_events_published_total"))
        measured = _watch_rate(publisher, "ledgerd_events_published_total", applied, "events")
        published = int(publisher.metric("ledgerd_events_published_total"))
        meter.stop(published - published_before)
        figures = {"events": applied, "published": published, "settled": published == applied}
        return Ran(measured, settle_and_audit(server_store(loader)), figures)
    finally:
        if publisher is not None:
            publisher.stop(timeout_s=120)
        loader.stop(timeout_s=120)


def _watch_rate(server: ServerProcess, metric: str, total: int, label: str) -> Measurement:
    """Poll a counter of ``server`` until ``total``; the rate from its first change to the
    last."""
    first = last = None
    count = 0.0
    deadline = time.monotonic() + 900
    shown = Progress(label)
    while count < total and time.monotonic() < deadline:
        count = server.metric(metric)
        now = time.monotonic()
        if count and first is None:
            first = (now, count)
        last = (now, count)
        shown.update(f"{count:,.0f} / {total:,}")
        time.sleep(0.2)
    shown.finish(f"{count:,.0f} / {total:,}")
    measured = Measurement()
    if first is not None and last is not None and last[0] > first[0]:
        measured.operations = int(last[1] - first[1])
        measured.elapsed_s = last[0] - first[0]
    return measured
