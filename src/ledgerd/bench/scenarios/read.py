"""read: GetBalance from a warm shared cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.names import run_label
from ledgerd.bench.scenarios.calls import CHANNEL_OPTIONS, SERVICE, batches, drive, warm_up
from ledgerd.bench.scenarios.common import (
    Options,
    Ran,
    api_env,
    api_processes,
    server_store,
    settle_and_audit,
    stack_env,
    start_server,
    stop_all,
    watched,
)
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.v1 import balance_pb2 as pb


def run(options: Options, _: Accounts, __: ChangeFactory, meter: CpuMeter) -> Ran:
    accounts = Accounts(min(options.accounts, 10_000))
    # One process with every role. GetBalance reads the shared cache (Redis on the
    # production stack), never the consumer's memory: that runs ahead of the cache, and
    # a read through another process must not see an older version afterwards.
    env = {**stack_env(options), **api_env(options)}
    servers = [start_server(options, "read", env)]
    server = servers[0]
    try:
        preload = Options(**{**options.__dict__, "duration_s": 3.0})
        asyncio.run(
            drive(preload, server.target, batches(ChangeFactory(accounts), 1000), "preload", 4)
        )
        settle_and_audit(server_store(server))
        # Each account read once first: a balance enters the shared cache when a read
        # misses it (or at a full sync), never from the change feed, which may replay old
        # versions. Measured are reads of a warm cache, what a service that runs sees.
        asyncio.run(_read_each_once(server.target, accounts))
        reads = _reads(accounts)
        warm_up(options, server.target, reads, options.concurrency)
        label = run_label(options.scenario, options.workers)
        meter.start(watched(servers))
        measured = asyncio.run(drive(options, server.target, reads, label, options.concurrency))
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
