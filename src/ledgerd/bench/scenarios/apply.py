"""apply and apply-large: a preloaded log drained by consumer processes into the store."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.progress import Progress
from ledgerd.bench.scenarios.calls import CHANNEL_OPTIONS, SERVICE
from ledgerd.bench.scenarios.common import (
    Options,
    Ran,
    server_store,
    settle_and_audit,
    stack_env,
    start_server,
    store_url,
    watch_counter,
    watched,
)
from ledgerd.bench.teardown import release
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.launch.serve_process import ServerProcess
from ledgerd.store import Store
from ledgerd.v1 import balance_pb2 as pb


def run(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
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
        if options.stack == "production":
            _wait_first_full_sync(consumers, timeout_s=120)
        profiler = _profile(options, consumers[0])
        # The window opens once every consumer serves (and, with Redis, once the cache was
        # filled from the store), leaving out their start (imports cost more CPU than a small
        # load). A consumer applies from its own start, though, so a
        # load smaller than what one applies while the others start is gone before the
        # window opens: measuring nothing is refused below rather than reported as a figure.
        meter.start(watched(consumers))
        applied_before = _applied(consumers)
        measured = watch_counter(lambda: _applied(consumers), total, "apply")
        in_window = int(_applied(consumers) - applied_before)
        meter.stop(in_window)
        if in_window < total // 10:
            raise RuntimeError(
                f"only {in_window:,} of {total:,} changes were applied after the consumers"
                " started, too few to measure: the rest before the measurement began (a larger"
                " --apply-changes)"
            )
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
        release(deployment)


def _prefill(url: str, options: Options) -> None:
    from ledgerd.bench.prefill import prefill

    shown = Progress("journal prefill")
    rows = options.journal_rows
    prefill(url, rows, options.accounts, progress=lambda n: shown.update(f"{n:,} / {rows:,} rows"))
    shown.finish(f"{rows:,} rows")


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


_FULL_SYNCS_DONE = 'ledgerd_cache_full_syncs_total{result="done"}'


def _wait_first_full_sync(consumers: Sequence[ServerProcess], timeout_s: float) -> None:
    """Until the consumers' leader filled the shared cache from the store once.

    A consumer that starts on a store with balances copies them all into Redis first: a
    cost of the start, by the store's accounts, not by the changes applied. apply-large's
    100k prefilled balances made it ~6 µs a change of its window (the consumer process
    2.9, Redis 3.6) that apply, starting on an empty store, never paid.

    Raises:
        TimeoutError: no full sync finished within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while sum(c.metric(_FULL_SYNCS_DONE) for c in consumers) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no cache full sync finished within {timeout_s:g} s")
        time.sleep(0.1)


def _applied(consumers: Sequence[ServerProcess]) -> float:
    """Changes decided (applied or rejected) by the consumers so far."""
    return sum(consumer.metric("ledgerd_changes_total") for consumer in consumers)
