"""transfer: Transfer calls between funded users, followed until both legs applied."""

from __future__ import annotations

import asyncio

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.pipeline import PipelineProbe, follow_to_the_end
from ledgerd.bench.scenarios.calls import drive
from ledgerd.bench.scenarios.common import (
    Options,
    Ran,
    server_store,
    settle_and_audit,
    start_deployment,
    stop_all,
    watched,
)
from ledgerd.bench.transfers import TransferFactory, count_applied, fund, transfer_calls
from ledgerd.bench.workload import Accounts, ChangeFactory


def run(options: Options, _: Accounts, __: ChangeFactory, meter: CpuMeter) -> Ran:
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
            drive(options, server.target, calls, "transfer", options.concurrency)
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
