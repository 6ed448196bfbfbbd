"""events: a consumer publishing change events for a journal applied beforehand."""

from __future__ import annotations

import asyncio
import time

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
from ledgerd.v1 import balance_pb2 as pb


def run(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
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
        measured = watch_counter(
            lambda: publisher.metric("ledgerd_events_published_total"), applied, "events"
        )
        published = int(publisher.metric("ledgerd_events_published_total"))
        meter.stop(published - published_before)
        figures = {"events": applied, "published": published, "settled": published == applied}
        return Ran(measured, settle_and_audit(server_store(loader)), figures)
    finally:
        if publisher is not None:
            publisher.stop(timeout_s=120)
        loader.stop(timeout_s=120)
        release(deployment)
