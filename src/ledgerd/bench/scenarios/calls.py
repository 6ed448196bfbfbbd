"""The gRPC calls the scenarios make, over several connections as several clients would."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import grpc

from ledgerd.bench.driver import Measurement, run_callers
from ledgerd.bench.scenarios.common import Options
from ledgerd.bench.workload import ChangeFactory
from ledgerd.v1 import balance_pb2 as pb

SERVICE = "/ledgerd.v1.BalanceService/"
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 64 << 20)]
CONNECTIONS = 8  # client connections per measured scenario


async def drive(
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


def warm_up(
    options: Options,
    target: str,
    make_call: Callable[[Any], Callable[[int], Any]],
    concurrency: int,
) -> None:
    """The scenario's own load for ``options.warmup_s``, before its measured window and
    not counted (nothing when 0). A change scenario waits for these changes' outcomes
    itself, so that applying them is not billed to the measured ones."""
    if options.warmup_s <= 0:
        return
    warm = dataclasses.replace(options, duration_s=options.warmup_s)
    asyncio.run(drive(warm, target, make_call, "warm-up", concurrency))


def single_changes(factory: ChangeFactory) -> Callable[[Any], Callable[[int], Any]]:
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


def batches(factory: ChangeFactory, size: int) -> Callable[[Any], Callable[[int], Any]]:
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
