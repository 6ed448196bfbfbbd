"""A client-side exchange load (deposits, withdrawals, freezes, transfers from available
and from frozen funds, atomic settlements, holds captured, released or left to expire) and
the model of its outcomes.

Clients retry a call that failed with a transient status with the same request id, on
the next API process, as a real client would, until it is answered or the load stops
(then it is kept in ``unanswered``). Once every call is final, ``ExchangeModel`` replays
the outcomes the server reports into the balances clients must read.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc

from harness.load import VERIFY_CALLS_AT_ONCE, new_request_id
from harness.waiting import wait_until
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

CURRENCIES = ("USD", "EUR")
# Settlements spend a hold in one currency and pay out the other.
SETTLE_SPENT, SETTLE_PAID = "USD", "EUR"
# The whale holds the most an account may (20 integer digits): every credit to it is
# refused (AMOUNT_OVERFLOW), so transfers to it come back to their source.
WHALE_AMOUNT = "99999999999999999999"
# What a client retries with the same request id; anything else is a test bug.
TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)
CALL_TIMEOUT_S = 5.0
# Holds expire within a few seconds, so that many expire (by the leader's sweep) while
# processes are killed, and some are captured or released first.
HOLD_TIMEOUT_MS = (300, 4000)
FINAL = (pb.APPLIED, pb.REJECTED)

Message = pb.ChangeBalanceRequest | pb.ChangeBalancesRequest | pb.TransferRequest


@dataclass(frozen=True)
class Operation:
    """One call the load makes: a single change, an atomic batch, or a transfer."""

    message: Message

    def send(self, stub: pb_grpc.BalanceServiceStub) -> None:
        if isinstance(self.message, pb.TransferRequest):
            stub.Transfer(self.message, timeout=CALL_TIMEOUT_S)
        elif isinstance(self.message, pb.ChangeBalancesRequest):
            stub.ChangeBalances(self.message, timeout=CALL_TIMEOUT_S)
        else:
            stub.ChangeBalance(self.message, timeout=CALL_TIMEOUT_S)


@dataclass
class ExchangeLoad:
    """Client threads making random exchange calls until stopped."""

    targets: Sequence[str]
    users: Sequence[int]
    whale: int
    clients: int = 6
    seed: int = 0
    acknowledged: list[Operation] = field(default_factory=list)
    unanswered: list[Operation] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # transient failures, by code
    refused: list[str] = field(default_factory=list)  # non-transient answers: test bugs
    # (holder, hold id, currency) of every HOLD acknowledged: what later calls capture
    holds: list[tuple[int, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(self.seed * 1000 + i,), daemon=True)
            for i in range(self.clients)
        ]

    def __enter__(self) -> ExchangeLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def wait_acknowledged(self, more: int, timeout_s: float = 120.0) -> None:
        """Until ``more`` calls beyond those acknowledged now have been acknowledged."""
        target = len(self.acknowledged) + more
        wait_until(
            lambda: len(self.acknowledged) >= target,
            timeout_s,
            f"{more} more exchange calls acknowledged after the first {target - more}",
        )

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        channels = [grpc.insecure_channel(t) for t in self.targets]
        stubs = [pb_grpc.BalanceServiceStub(c) for c in channels]
        turn = itertools.count(rng.randrange(len(stubs)))
        try:
            while not self._stop.is_set():
                self._until_answered(self._next(rng), lambda: stubs[next(turn) % len(stubs)])
        finally:
            for channel in channels:
                channel.close()

    def _until_answered(
        self, operation: Operation, next_stub: Callable[[], pb_grpc.BalanceServiceStub]
    ) -> None:
        stub = next_stub()
        while not self._stop.is_set():
            try:
                operation.send(stub)
            except grpc.RpcError as exc:
                code = exc.code()
                with self._lock:
                    if code not in TRANSIENT:
                        self.refused.append(f"{code.name}: {exc.details()}")
                        return
                    self.errors[code.name] += 1
                stub = next_stub()  # another API process may be up
                time.sleep(0.1)
                continue
            with self._lock:
                self.acknowledged.append(operation)
                message = operation.message
                if isinstance(message, pb.ChangeBalanceRequest) and message.type == pb.HOLD:
                    self.holds.append((message.user_id, message.request_id, message.currency))
            return
        with self._lock:
            self.unanswered.append(operation)

    def _next(self, rng: random.Random) -> Operation:
        user = rng.choice(self.users)
        currency = rng.choice(CURRENCIES)
        roll = rng.random()
        if roll < 0.2:
            return Operation(_change(user, pb.DEPOSIT, rng.randint(1, 100), currency))
        if roll < 0.25:
            return Operation(_change(user, pb.WITHDRAW, rng.randint(1, 40), currency))
        if roll < 0.4:
            return Operation(_change(user, pb.FREEZE, rng.randint(1, 50), currency))
        if roll < 0.75:
            others = [u for u in self.users if u != user]
            to_user = self.whale if rng.random() < 0.1 else rng.choice(others)
            return Operation(
                pb.TransferRequest(
                    request_id=new_request_id("x"),
                    from_user_id=user,
                    to_user_id=to_user,
                    currency=currency,
                    amount=str(rng.randint(1, 60)),
                    from_frozen=rng.random() < 0.4,
                    wait=rng.random() < 0.3,
                )
            )
        if roll < 0.9:
            return self._hold_operation(rng, user, currency)
        legs = [
            _change(user, pb.SPEND_FROZEN, rng.randint(1, 30), SETTLE_SPENT),
            _change(user, pb.DEPOSIT, rng.randint(1, 30), SETTLE_PAID),
        ]
        return Operation(
            pb.ChangeBalancesRequest(changes=legs, atomic=True, wait=rng.random() < 0.3)
        )

    def _hold_operation(self, rng: random.Random, user: int, currency: str) -> Operation:
        """A new hold, or a capture (to the holder's spend or paid to another user) or a
        release of a hold placed earlier, which may have expired meanwhile."""
        with self._lock:
            placed = rng.choice(self.holds) if self.holds else None
        if placed is None or rng.random() < 0.4:
            hold = _change(user, pb.HOLD, rng.randint(1, 40), currency)
            hold.timeout_ms = rng.randint(*HOLD_TIMEOUT_MS)
            return Operation(hold)
        holder, hold_id, held_currency = placed
        if rng.random() < 0.7:
            capture = _change(holder, pb.HOLD_CAPTURE, rng.randint(1, 15), held_currency)
            capture.hold_id = hold_id
            if rng.random() < 0.4:
                capture.to_user_id = rng.choice([u for u in self.users if u != holder])
            return Operation(capture)
        release = pb.ChangeBalanceRequest(
            request_id=new_request_id("r"), user_id=holder, currency=held_currency,
            type=pb.HOLD_RELEASE, hold_id=hold_id,
        )  # fmt: skip
        return Operation(release)

    def retry_unanswered(self, stub: pb_grpc.BalanceServiceStub) -> None:
        """Send every unanswered call again with its request ids, as a client would."""
        for operation in self.unanswered:
            wait_until(
                lambda op=operation: _answered(op, stub),
                120,
                f"{operation.message} answered",
                ignoring=(grpc.RpcError,),
                interval_s=0.2,
            )
        self.acknowledged += self.unanswered
        self.unanswered = []


def _answered(operation: Operation, stub: pb_grpc.BalanceServiceStub) -> bool:
    operation.send(stub)
    return True


def _change(user: int, kind: int, units: int, currency: str) -> pb.ChangeBalanceRequest:
    return pb.ChangeBalanceRequest(
        request_id=new_request_id("c"),
        user_id=user,
        currency=currency,
        type=kind,  # type: ignore[arg-type]
        amount=str(units),
    )


@dataclass
class Outcomes:
    """Final outcomes of a load's calls, as GetTransfer and GetChange report them."""

    transfers: dict[str, pb.Transfer] = field(default_factory=dict)
    changes: dict[str, pb.ChangeResult] = field(default_factory=dict)

    @classmethod
    def read(
        cls, stub: pb_grpc.BalanceServiceStub, operations: Sequence[Operation], timeout_s: float
    ) -> Outcomes:
        """Wait until every call is final (APPLIED or REJECTED) and read its outcome."""
        outcomes = cls()
        # (where the outcome goes, its request id, how to read it, what it is), in call order
        reads: list[tuple[dict[str, Any], str, Callable[[], Any], str]] = []
        for operation in operations:
            message = operation.message
            if isinstance(message, pb.TransferRequest):
                reads.append(
                    (
                        outcomes.transfers,
                        message.request_id,
                        lambda m=message: (
                            stub.GetTransfer(
                                pb.GetTransferRequest(request_id=m.request_id),
                                timeout=CALL_TIMEOUT_S,
                            ).transfer
                        ),
                        f"transfer {message.request_id} final",
                    )
                )
                continue
            changes = (
                message.changes if isinstance(message, pb.ChangeBalancesRequest) else [message]
            )
            for change in changes:
                reads.append(
                    (
                        outcomes.changes,
                        change.request_id,
                        lambda c=change: stub.GetChange(
                            pb.GetChangeRequest(request_id=c.request_id), timeout=CALL_TIMEOUT_S
                        ),
                        f"change {change.request_id} final",
                    )
                )
        # Thousands of calls after a load: several at once (see harness.load.verify).
        with ThreadPoolExecutor(max_workers=VERIFY_CALLS_AT_ONCE) as pool:
            answers = pool.map(lambda r: _final(r[2], timeout_s, r[3]), reads)
        for (into, request_id, _, _), answer in zip(reads, answers, strict=True):
            into[request_id] = answer
        return outcomes


def _final(
    read: Callable[[], pb.Transfer | pb.ChangeResult], timeout_s: float, what: str
) -> pb.Transfer | pb.ChangeResult:
    """``read`` until its answer is APPLIED or REJECTED; that answer."""
    found: list[pb.Transfer | pb.ChangeResult] = []

    def final() -> bool:
        found[:] = [read()]
        return found[0].status in FINAL

    wait_until(final, timeout_s, what, ignoring=(grpc.RpcError,), interval_s=0.1)
    return found[0]


@dataclass
class ExchangeModel:
    """Balances (available, frozen) by (user, currency) after the calls that applied."""

    available: defaultdict[tuple[int, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    frozen: defaultdict[tuple[int, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    transfers_credited: int = 0
    transfers_returned: int = 0
    transfers_refused: int = 0  # the debit refused: nothing moved
    settlements: int = 0
    captures: int = 0  # holds captured (in part or in full), to the holder's spend or paid
    captures_paid: int = 0  # of them, paid to another user (a transfer, for the audit)
    releases: int = 0
    expiries: int = 0  # HOLD_EXPIRE entries: the leader's sweep, never a client
    _returned: Mapping[str, HoldReturn] = field(default_factory=dict)
    broken_atomicity: list[str] = field(default_factory=list)

    def replay(
        self,
        operations: Sequence[Operation],
        outcomes: Outcomes,
        returned: Mapping[str, HoldReturn] | None = None,
    ) -> ExchangeModel:
        """The balances after ``operations`` as their ``outcomes`` say; ``returned``: the
        journal's releases and expiries of holds by request id (what a release gives back
        is the hold's remainder then, which only the log's order decides)."""
        self._returned = returned or {}
        for expiry in self._returned.values():
            if expiry.type == pb.HOLD_EXPIRE:
                self.expiries += 1
                self._give_back(expiry)
        for operation in operations:
            message = operation.message
            if isinstance(message, pb.TransferRequest):
                self._transfer(message, outcomes.transfers[message.request_id])
            elif isinstance(message, pb.ChangeBalancesRequest):
                statuses = {outcomes.changes[c.request_id].status for c in message.changes}
                if len(statuses) != 1:
                    self.broken_atomicity.append(message.changes[0].request_id)
                if statuses == {pb.APPLIED}:
                    self.settlements += 1
                    for change in message.changes:
                        self._change(change)
            elif outcomes.changes[message.request_id].status == pb.APPLIED:
                self._change(message)
        return self

    def _change(self, change: pb.ChangeBalanceRequest) -> None:
        key, amount = (change.user_id, change.currency), Decimal(change.amount or 0)
        if change.type == pb.DEPOSIT:
            self.available[key] += amount
        elif change.type == pb.WITHDRAW:
            self.available[key] -= amount
        elif change.type == pb.FREEZE:
            self.available[key] -= amount
            self.frozen[key] += amount
        elif change.type == pb.SPEND_FROZEN:
            self.frozen[key] -= amount
        elif change.type == pb.HOLD:
            self.available[key] -= amount
            self.frozen[key] += amount
        elif change.type == pb.HOLD_CAPTURE:
            self.captures += 1
            self.frozen[key] -= amount
            if change.to_user_id:  # paid to another user, as a transfer's credit
                self.captures_paid += 1
                self.available[(change.to_user_id, change.currency)] += amount
        elif change.type == pb.HOLD_RELEASE:
            self.releases += 1
            self._give_back(self._returned[change.request_id])
        else:
            raise AssertionError(f"the load sends no {change.type}")

    def _give_back(self, entry: HoldReturn) -> None:
        key = (entry.user_id, entry.currency)
        self.frozen[key] -= entry.amount
        self.available[key] += entry.amount

    def _transfer(self, request: pb.TransferRequest, outcome: pb.Transfer) -> None:
        source = (request.from_user_id, request.currency)
        amount = Decimal(request.amount)
        credited = outcome.status == pb.APPLIED
        if not (credited or outcome.debited):
            self.transfers_refused += 1
            return
        # The debit: from frozen or from available.
        (self.frozen if request.from_frozen else self.available)[source] -= amount
        if credited:
            self.transfers_credited += 1
            self.available[(request.to_user_id, request.currency)] += amount
        else:  # the credit refused: the amount is back in the source's available
            self.transfers_returned += 1
            self.available[source] += amount


@dataclass(frozen=True)
class HoldReturn:
    """A journal entry that gave a hold's remainder back to available: a client's
    HOLD_RELEASE or the sweep's HOLD_EXPIRE."""

    request_id: str
    hold_id: str
    user_id: int
    currency: str
    type: int
    amount: Decimal


def hold_returns(
    stub: pb_grpc.BalanceServiceStub, accounts: Sequence[tuple[int, str]]
) -> dict[str, HoldReturn]:
    """Every release and expiry in the journals of ``accounts``, by request id."""
    found: dict[str, HoldReturn] = {}
    for user, currency in accounts:
        after = 0
        while True:
            page = stub.ListJournal(
                pb.ListJournalRequest(user_id=user, currency=currency, after_version=after,
                                      limit=1000),
                timeout=CALL_TIMEOUT_S,
            ).entries  # fmt: skip
            for entry in page:
                if entry.type in (pb.HOLD_RELEASE, pb.HOLD_EXPIRE):
                    found[entry.request_id] = HoldReturn(
                        entry.request_id, entry.hold_id, user, currency, entry.type,
                        Decimal(entry.amount),
                    )  # fmt: skip
            if len(page) < 1000:
                break
            after = page[-1].version
    return found


def holds_of(operations: Sequence[Operation]) -> list[tuple[int, str]]:
    """(holder, hold id) of every HOLD among ``operations``."""
    return [
        (op.message.user_id, op.message.request_id)
        for op in operations
        if isinstance(op.message, pb.ChangeBalanceRequest) and op.message.type == pb.HOLD
    ]
