"""hold: funded users' holds, each captured in full at once or left to expire.

Each call is one ChangeBalances of ``HOLD_UNITS`` units for random users: half a HOLD
and its HOLD_CAPTURE (same call, so the capture follows its hold in the partition), half a
HOLD of ``EXPIRE_MS`` left to the leader's expiry sweep. After the load, the run waits for
every change and every expiry to apply, so the CPU per change (client changes and the
sweep's HOLD_EXPIREs together) includes the whole life of a hold.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.scenarios.common import (
    Options,
    Ran,
    server_store,
    settle_and_audit,
)
from ledgerd.bench.scenarios.funded import drive_and_follow, funded_deployment
from ledgerd.bench.transfers import CURRENCY, SERVICE
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.store.base import Store
from ledgerd.v1 import balance_pb2 as pb

HOLD_UNITS = 50  # per call: 25 captured holds (2 changes each) and 25 expiring (1 change)
EXPIRE_MS = 500
CAPTURED_TIMEOUT_MS = 600_000


@dataclass
class HoldFactory:
    """Hold units for users 1..``users``; counts the expiring holds the API accepted."""

    users: int
    expiring: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._rng = random.Random(0)
        self._prefix = f"h{os.getpid()}-{random.getrandbits(32):08x}-"

    def batch(self) -> tuple[pb.ChangeBalancesRequest, int]:
        """One call's changes and how many of its holds expire."""
        changes: list[pb.ChangeBalanceRequest] = []
        for unit in range(HOLD_UNITS):
            user = self._rng.randint(1, self.users)
            hold_id = f"{self._prefix}{next(self._ids)}"
            captured = unit % 2 == 0
            changes.append(
                pb.ChangeBalanceRequest(
                    request_id=hold_id, user_id=user, currency=CURRENCY, type=pb.HOLD,
                    amount="0.5", timeout_ms=CAPTURED_TIMEOUT_MS if captured else EXPIRE_MS,
                )
            )  # fmt: skip
            if captured:
                changes.append(
                    pb.ChangeBalanceRequest(
                        request_id=f"{hold_id}-c", user_id=user, currency=CURRENCY,
                        type=pb.HOLD_CAPTURE, amount="0.5", hold_id=hold_id,
                    )
                )  # fmt: skip
        return pb.ChangeBalancesRequest(changes=changes), HOLD_UNITS // 2


def hold_calls(factory: HoldFactory) -> Callable[[Any], Callable[[int], Any]]:
    """The benchmark's call on a channel: one ChangeBalances of hold units."""

    def make(channel: Any) -> Callable[[int], Any]:
        stub = channel.unary_unary(
            SERVICE + "ChangeBalances",
            request_serializer=pb.ChangeBalancesRequest.SerializeToString,
            response_deserializer=pb.ChangeBalancesResponse.FromString,
        )

        async def call(_: int) -> int:
            request, expiring = factory.batch()
            await stub(request, timeout=30)
            factory.expiring += expiring
            return len(request.changes)

        return call

    return make


def _wait_expired(store: Store, timeout_s: float) -> bool:
    """Whether, within the time, no open hold is past its expiry and nothing is in flight."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            now_ms = int(time.time() * 1000)
            if not store.due_holds(now_ms, 1) and not sum(store.count_unfinished().values()):
                return True
            time.sleep(0.2)
        return False
    finally:
        store.close()


def run(options: Options, _: Accounts, __: ChangeFactory, meter: CpuMeter) -> Ran:
    """Users funded first, then hold units for ``duration_s``; followed until every change
    applied and every expiring hold expired, then audited (open holds within frozen, none
    overdue)."""
    with funded_deployment(options, "hold") as deployment:
        factory = HoldFactory(deployment.users)
        calls = hold_calls(factory)
        measured, end_to_end = drive_and_follow(options, deployment, calls, "hold", meter)
        server = deployment.server
        # The expiries come due EXPIRE_MS after the last hold, then take a sweep round.
        settled = _wait_expired(server_store(server), timeout_s=120)
        meter.stop(measured.operations + factory.expiring)
        figures = {
            **end_to_end.as_dict(),
            "users": deployment.users,
            "client_changes": measured.operations,
            "expired_holds": factory.expiring,
            "settled": settled,
        }
        return Ran(measured, settle_and_audit(server_store(server)), figures)
