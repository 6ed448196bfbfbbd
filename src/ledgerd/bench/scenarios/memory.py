"""memory: resident memory per cached account."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import grpc

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.driver import Measurement
from ledgerd.bench.progress import Progress
from ledgerd.bench.scenarios.calls import CHANNEL_OPTIONS, SERVICE
from ledgerd.bench.scenarios.common import (
    Options,
    Ran,
    server_store,
    settle_and_audit,
    stack_env,
    start_server,
)
from ledgerd.bench.teardown import release
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.v1 import balance_pb2 as pb


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def run(options: Options, _: Accounts, __: ChangeFactory, ___: CpuMeter) -> Ran:
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
        release(server.env)
    measured = Measurement(operations=(after - before) // max(options.memory_accounts, 1), calls=1)
    measured.elapsed_s = 1.0
    audited["rss_bytes"] = after
    audited["accounts"] = options.memory_accounts
    return Ran(measured, audited)
