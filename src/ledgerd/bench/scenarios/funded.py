"""What the scenarios over funded users share (transfer, hold): a deployment whose users
are funded before the clock starts, and a load driven, then followed until every change it
made applied."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.driver import Measurement
from ledgerd.bench.pipeline import EndToEnd, PipelineProbe, follow_to_the_end
from ledgerd.bench.scenarios.calls import drive
from ledgerd.bench.scenarios.common import Options, start_deployment, stop_all, watched
from ledgerd.bench.transfers import fund
from ledgerd.launch.serve_process import ServerProcess

# Users funded at most: enough for random pairs, few enough to fund in seconds.
MAX_FUNDED_USERS = 10_000


@dataclass(frozen=True)
class FundedDeployment:
    servers: list[ServerProcess]
    probe: PipelineProbe
    users: int  # user ids 1..users hold funds

    @property
    def server(self) -> ServerProcess:
        """The one the load calls."""
        return self.servers[0]


@contextmanager
def funded_deployment(options: Options, name: str) -> Iterator[FundedDeployment]:
    """A started deployment whose users' deposits all applied; stopped on leaving."""
    servers = start_deployment(options, name)
    probe: PipelineProbe | None = None
    try:
        probe = PipelineProbe(servers[0].env, servers[0].data_dir)
        users = min(options.accounts, MAX_FUNDED_USERS)
        asyncio.run(fund(servers[0].target, users))
        if not probe.wait_for_outcomes(timeout_s=300):
            raise RuntimeError("the funding deposits did not all apply within 300 s")
        probe.consumer_lag()  # connects to the log now, not in the moment the load stops
        yield FundedDeployment(servers, probe, users)
    finally:
        if probe is not None:
            probe.close()
        stop_all(servers)


def drive_and_follow(
    options: Options,
    deployment: FundedDeployment,
    calls: Callable[[Any], Callable[[int], Any]],
    label: str,
    meter: CpuMeter,
) -> tuple[Measurement, EndToEnd]:
    """Start the meter, drive ``calls`` for the scenario's duration, and follow until every
    change accepted applied (the meter keeps running: the caller stops it)."""
    meter.start(watched(deployment.servers))
    target = deployment.server.target
    measured = asyncio.run(drive(options, target, calls, label, options.concurrency))
    end_to_end = follow_to_the_end(
        deployment.probe,
        accepted=measured.operations,
        load_started_at_s=measured.started_at_s,
        load_elapsed_s=measured.elapsed_s,
    )
    return measured, end_to_end
