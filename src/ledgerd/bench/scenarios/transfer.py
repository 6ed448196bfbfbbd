"""transfer: Transfer calls between funded users, followed until both legs applied."""

from __future__ import annotations

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.scenarios.common import Options, Ran, server_store, settle_and_audit
from ledgerd.bench.scenarios.funded import drive_and_follow, funded_deployment
from ledgerd.bench.transfers import TransferFactory, count_applied, transfer_calls
from ledgerd.bench.workload import Accounts, ChangeFactory


def run(options: Options, _: Accounts, __: ChangeFactory, meter: CpuMeter) -> Ran:
    """Users funded first (applied before the clock starts), then Transfer calls between
    random pairs, followed until every transfer's credit applied (both legs, each on its
    user's partition), then audited; a sample is checked APPLIED through GetTransfer."""
    with funded_deployment(options, "transfer") as deployment:
        factory = TransferFactory(deployment.users)
        calls = transfer_calls(factory)
        measured, end_to_end = drive_and_follow(options, deployment, calls, "transfer", meter)
        meter.stop(measured.operations)
        sample = factory.sample()
        server = deployment.server
        figures = {
            **end_to_end.as_dict(),
            "users": deployment.users,
            "sampled_applied": f"{count_applied(server.target, sample)}/{len(sample)}",
        }
        return Ran(measured, settle_and_audit(server_store(server)), figures)
