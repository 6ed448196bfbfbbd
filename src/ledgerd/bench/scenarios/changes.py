"""change-single, change-batch and hot: a change load on a deployment, followed until
every accepted change has an outcome, then audited."""

from __future__ import annotations

import asyncio

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.names import run_label
from ledgerd.bench.pipeline import PipelineProbe, follow_to_the_end
from ledgerd.bench.scenarios.calls import batches, drive, single_changes, warm_up
from ledgerd.bench.scenarios.common import (
    Options,
    Ran,
    api_processes,
    server_store,
    settle_and_audit,
    start_deployment,
    stop_all,
    watched,
)
from ledgerd.bench.workload import Accounts, ChangeFactory

# The warm-up's changes are applied before the measured window opens, within this.
WARMUP_DRAIN_TIMEOUT_S = 300.0


def run(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
    """A change load, followed until every accepted change has an outcome, then audited."""
    servers = start_deployment(options, options.scenario)
    server = servers[0]
    probe: PipelineProbe | None = None
    try:
        probe = PipelineProbe(server.env, server.data_dir)
        if options.scenario == "change-single":
            calls, concurrency = single_changes(factory), options.concurrency
        else:
            calls, concurrency = (
                batches(factory, options.batch),
                max(1, min(options.concurrency, 8)),
            )
        warm_up(options, server.target, calls, concurrency)
        if not probe.wait_for_outcomes(WARMUP_DRAIN_TIMEOUT_S):
            raise RuntimeError(f"the warm-up's changes not applied in {WARMUP_DRAIN_TIMEOUT_S} s")
        probe.consumer_lag()  # connects to the log now, not in the moment the load stops
        label = run_label(options.scenario, options.workers)
        meter.start(watched(servers))
        measured = asyncio.run(drive(options, server.target, calls, label, concurrency))
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
