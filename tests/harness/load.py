"""Client-side load and bookkeeping for tests that check exactly-once effects."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc

from harness.waiting import wait_until
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

_ids = itertools.count()
_users = itertools.count(1)
VERIFY_CALLS_AT_ONCE = 8  # GetChange calls in flight while a load is verified


def new_request_id(prefix: str = "t") -> str:
    return f"{prefix}-{time.time_ns()}-{next(_ids)}"


def new_user() -> int:
    """A user id no other test of this run touches."""
    return (time.time_ns() // 1000) * 100 + next(_users) % 100


def change(
    user: int,
    kind: int,
    amount: str,
    currency: str = "USD",
    request_id: str | None = None,
    **fields: Any,
) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=request_id or new_request_id(),
        user_id=user,
        currency=currency,
        type=kind,  # type: ignore[arg-type]
        amount=amount,
        **fields,
    )


@dataclass
class Model:
    """Reference balances: the effects of the changes the server says it APPLIED."""

    available: defaultdict[tuple[int, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    frozen: defaultdict[tuple[int, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )

    def apply(self, request: pb.ChangeBalanceRequest) -> None:
        key = (request.user_id, request.currency)
        amount = Decimal(request.amount)
        if request.type == pb.DEPOSIT:
            self.available[key] += amount
        elif request.type == pb.WITHDRAW:
            self.available[key] -= amount
        elif request.type == pb.FREEZE:
            self.available[key] -= amount
            self.frozen[key] += amount
        else:
            self.frozen[key] -= amount
            self.available[key] += amount


def final_status(
    stub: pb_grpc.BalanceServiceStub, request_id: str, timeout_s: float = 60.0
) -> pb.ChangeResult:
    """GetChange until the request is APPLIED or REJECTED (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = stub.GetChange(pb.GetChangeRequest(request_id=request_id), timeout=5)
            if result.status in (pb.APPLIED, pb.REJECTED):
                return result
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            result = pb.ChangeResult(request_id=request_id)
        if time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def balance_of(stub: pb_grpc.BalanceServiceStub, user: int, currency: str = "USD") -> pb.Balance:
    answer = stub.GetBalance(pb.GetBalanceRequest(user_id=user, currency=currency), timeout=5)
    (balance,) = answer.balances
    return balance


class Load:
    """Client threads sending changes until stopped; records what was acknowledged.

    A call that fails is kept in ``unanswered`` (it may or may not be stored) and
    ``errors`` counts failures by status code.
    """

    def __init__(
        self,
        target: str,
        users: list[int],
        clients: int = 8,
        withdraw_share: float = 0.3,
        pause_s: float = 0.0,
    ) -> None:
        self.target = target
        self.users = users
        self.withdraw_share = withdraw_share
        self.pause_s = pause_s
        self.acknowledged: list[pb.ChangeBalanceRequest] = []
        self.unanswered: list[pb.ChangeBalanceRequest] = []
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(clients)]

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            while not self.stop.is_set():
                kind = pb.WITHDRAW if rng.random() < self.withdraw_share else pb.DEPOSIT
                request = change(rng.choice(self.users), kind, str(rng.randint(1, 100)))
                try:
                    stub.ChangeBalance(request, timeout=5)
                except grpc.RpcError as exc:
                    with self.lock:
                        self.unanswered.append(request)
                        self.errors[exc.code().name] += 1
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.acknowledged.append(request)
                if self.pause_s:
                    time.sleep(self.pause_s)

    def failures(self) -> int:
        """Calls that failed so far."""
        with self.lock:
            return sum(self.errors.values())

    def wait_acknowledged(self, more: int, timeout_s: float = 60.0) -> None:
        """Until ``more`` changes beyond those acknowledged now have been acknowledged:
        how a test lets the load run "for a while" and knows what it exercised."""
        target = len(self.acknowledged) + more
        wait_until(
            lambda: len(self.acknowledged) >= target,
            timeout_s,
            f"{more} more changes acknowledged after the first {target - more}",
        )

    def wait_failed(self, more: int = 1, timeout_s: float = 60.0) -> None:
        """Until ``more`` calls beyond those failed now have failed (a fault reached clients)."""
        target = self.failures() + more
        wait_until(lambda: self.failures() >= target, timeout_s, f"{more} more calls failed")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def verify(self, stub: pb_grpc.BalanceServiceStub, retry_unanswered: bool = True) -> Model:
        """Every acknowledged change is APPLIED or REJECTED; returns the model of APPLIED ones.

        Unanswered calls are retried with their request_id first (as a client would),
        so they count too.
        """
        if retry_unanswered:
            for request in self.unanswered:
                stub.ChangeBalance(request, timeout=30)
        model = Model()
        requests = self.acknowledged + (self.unanswered if retry_unanswered else [])
        # One GetChange per change, thousands after a load of tens of seconds: one at a time
        # they took 100 s of the consumer-kill scenario (5 ms each), so several at once.
        with ThreadPoolExecutor(max_workers=VERIFY_CALLS_AT_ONCE) as pool:
            results = pool.map(lambda request: final_status(stub, request.request_id), requests)
        for request, result in zip(requests, results, strict=True):
            if result.status not in (pb.APPLIED, pb.REJECTED):
                raise AssertionError(f"{request.request_id} stuck in {result.status}")
            if result.status == pb.APPLIED:
                model.apply(request)
        return model
