"""What the benchmark sends: accounts by distribution, the seed's operation mix."""

from __future__ import annotations

import bisect
import itertools
import os
import random
from dataclasses import dataclass

from ledgerd.v1 import balance_pb2 as pb

# 60% DEPOSIT / 20% WITHDRAW / 10% FREEZE / 10% UNFREEZE
OP_MIX = [pb.DEPOSIT] * 6 + [pb.WITHDRAW] * 2 + [pb.FREEZE] + [pb.UNFREEZE]


class Accounts:
    """Picks user ids 1..N uniformly or by a Zipf law (a few very hot accounts)."""

    def __init__(self, count: int, distribution: str = "uniform", exponent: float = 1.1) -> None:
        self.count = count
        self._cdf: list[float] | None = None
        if distribution == "zipf":
            weights = [1.0 / (rank**exponent) for rank in range(1, count + 1)]
            total = sum(weights)
            self._cdf = list(itertools.accumulate(w / total for w in weights))
        elif distribution != "uniform":
            raise ValueError("distribution must be uniform or zipf")

    def pick(self, rng: random.Random) -> int:
        if self._cdf is None:
            return rng.randint(1, self.count)
        return min(bisect.bisect_left(self._cdf, rng.random()), self.count - 1) + 1


@dataclass
class ChangeFactory:
    """Builds change requests with unique ids for one benchmark run."""

    accounts: Accounts
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._ids = itertools.count()
        self._prefix = f"b{os.getpid()}-{random.getrandbits(32):08x}-"

    def one(self) -> pb.ChangeBalanceRequest:
        rng = self._rng
        return pb.ChangeBalanceRequest(
            request_id=f"{self._prefix}{next(self._ids)}",
            user_id=self.accounts.pick(rng),
            currency="USD",
            type=rng.choice(OP_MIX),
            amount=f"{rng.randint(1, 100)}.{rng.randint(0, 99):02d}",
        )

    def batch(self, size: int) -> pb.ChangeBalancesRequest:
        return pb.ChangeBalancesRequest(changes=[self.one() for _ in range(size)])
