"""What the transfer scenario sends: deposits that fund every user first, then transfers
between random pairs of them, small enough never to run a source short."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from ledgerd.bench.progress import Progress
from ledgerd.v1 import balance_pb2 as pb

SERVICE = "/ledgerd.v1.BalanceService/"
CURRENCY = "USD"
# Each user's funding; a transfer moves at most 1, so a run of millions of transfers spread
# over thousands of users leaves every source far from empty: no transfer is REJECTED.
FUNDING = "1000000"
FUNDING_BATCH = 1000
# Transfers looked up after the run to confirm they are APPLIED (both legs).
SAMPLE = 200


@dataclass
class TransferFactory:
    """Transfers between users 1..``users`` (two different ones), with unique ids; keeps
    the ids of those the API accepted."""

    users: int
    seed: int = 0
    accepted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.users < 2:
            raise ValueError("a transfer needs two users")
        self._rng = random.Random(self.seed)
        self._ids = itertools.count()
        self._prefix = f"x{os.getpid()}-{random.getrandbits(32):08x}-"

    def one(self) -> pb.TransferRequest:
        source, destination = self._rng.sample(range(1, self.users + 1), 2)
        return pb.TransferRequest(
            request_id=f"{self._prefix}{next(self._ids)}",
            from_user_id=source,
            to_user_id=destination,
            currency=CURRENCY,
            amount=f"0.{self._rng.randint(1, 99):02d}",
        )

    def sample(self, count: int = SAMPLE) -> Sequence[str]:
        return self._rng.sample(self.accepted, min(count, len(self.accepted)))


def transfer_calls(factory: TransferFactory) -> Callable[[Any], Callable[[int], Any]]:
    """The benchmark's call on a channel: one Transfer, not waiting for it to apply."""

    def make(channel: Any) -> Callable[[int], Any]:
        stub = channel.unary_unary(
            SERVICE + "Transfer",
            request_serializer=pb.TransferRequest.SerializeToString,
            response_deserializer=pb.TransferResponse.FromString,
        )

        async def call(_: int) -> int:
            request = factory.one()
            await stub(request, timeout=30)
            factory.accepted.append(request.request_id)
            return 1

        return call

    return make


async def fund(target: str, users: int) -> None:
    """Deposit FUNDING into every user's account (accepted, not yet applied on return)."""
    prefix = f"fund{os.getpid()}-{random.getrandbits(32):08x}-"
    pending = iter(range(1, users + 1))
    shown = Progress("funding")
    async with grpc.aio.insecure_channel(target) as channel:
        stub = channel.unary_unary(
            SERVICE + "ChangeBalances",
            request_serializer=pb.ChangeBalancesRequest.SerializeToString,
            response_deserializer=pb.ChangeBalancesResponse.FromString,
        )

        async def worker() -> None:
            while batch := list(itertools.islice(pending, FUNDING_BATCH)):
                deposits = [_funding(f"{prefix}{user}", user) for user in batch]
                await stub(pb.ChangeBalancesRequest(changes=deposits), timeout=60)
                shown.update(f"{batch[-1]:,} users")

        await asyncio.gather(*(worker() for _ in range(4)))
    shown.finish(f"{users:,} users")


def _funding(request_id: str, user: int) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=request_id, user_id=user, currency=CURRENCY, type=pb.DEPOSIT, amount=FUNDING
    )


def count_applied(target: str, request_ids: Sequence[str]) -> int:
    """How many of the transfers GetTransfer reports APPLIED."""
    with grpc.insecure_channel(target) as channel:
        stub = channel.unary_unary(
            SERVICE + "GetTransfer",
            request_serializer=pb.GetTransferRequest.SerializeToString,
            response_deserializer=pb.GetTransferResponse.FromString,
        )
        return sum(
            stub(pb.GetTransferRequest(request_id=i), timeout=30).transfer.status == pb.APPLIED
            for i in request_ids
        )
