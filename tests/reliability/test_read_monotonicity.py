"""Reads never go back in time across API processes, through a Redis restart.

Roles split over three processes (two API processes, one of them the relay; a consumer
with the cache updater). Readers alternate between the two API processes while writers
deposit with ``wait=true``, and Redis is stopped and started again mid-run (it comes
back with its last snapshot, older than versions already answered). Every read that
began after an answer of version v completed (an APPLIED answer or another read, through
either process) must return at least v; once settled, every read equals the journal.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import grpc
from harness import Deployment, run_services, wait_until
from harness.load import change, new_user
from harness.proxy import CuttableProxy

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


@dataclass(frozen=True, slots=True)
class Answer:
    user: int
    began_ns: int
    ended_ns: int
    version: int
    is_read: bool


class Traffic:
    """Reader threads alternating between the API processes, and writers waiting for
    APPLIED; every answer with its times."""

    def __init__(self, targets: list[str], users: list[int], readers: int, writers: int) -> None:
        self.targets, self.users = targets, users
        self.answers: list[Answer] = []
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(i,)) for i in range(readers)] + [
            threading.Thread(target=self._write, args=(i,)) for i in range(writers)
        ]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def reads(self) -> int:
        with self.lock:
            return sum(a.is_read for a in self.answers)

    def _record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def _read(self, seed: int) -> None:
        rng = random.Random(seed)
        channels = [grpc.insecure_channel(t) for t in self.targets]
        stubs = [pb_grpc.BalanceServiceStub(c) for c in channels]
        try:
            for turn in itertools.count(seed):
                if self.stop.is_set():
                    return
                user = rng.choice(self.users)
                began = time.monotonic_ns()
                try:
                    found = stubs[turn % len(stubs)].GetBalance(
                        pb.GetBalanceRequest(user_id=user, currency="USD"), timeout=10
                    )
                except grpc.RpcError as exc:
                    with self.lock:
                        self.errors[exc.code().name] += 1
                    continue
                version = found.balances[0].version
                self._record(Answer(user, began, time.monotonic_ns(), version, True))
        finally:
            for channel in channels:
                channel.close()

    def _write(self, seed: int) -> None:
        rng = random.Random(1000 + seed)
        with grpc.insecure_channel(self.targets[seed % len(self.targets)]) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            while not self.stop.is_set():
                request = change(rng.choice(self.users), pb.DEPOSIT, "1", wait=True)
                began = time.monotonic_ns()
                try:
                    result = stub.ChangeBalance(request, timeout=10)
                except grpc.RpcError as exc:
                    with self.lock:
                        self.errors[exc.code().name] += 1
                    time.sleep(0.05)
                    continue
                if result.status == pb.APPLIED and result.HasField("balance"):
                    ended = time.monotonic_ns()
                    self._record(
                        Answer(request.user_id, began, ended, result.balance.version, False)
                    )


def older_reads(answers: list[Answer]) -> list[str]:
    """Reads that returned a version below one answered before they began."""
    found: list[str] = []
    by_user: defaultdict[int, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_user[answer.user].append(answer)
    for user, mine in by_user.items():
        ended: list[tuple[int, int]] = []  # (ended_ns, version) of answers not yet swept in
        heapq.heapify(ended)
        for answer in sorted(mine, key=lambda a: a.ended_ns):
            heapq.heappush(ended, (answer.ended_ns, answer.version))
        floor = 0
        for answer in sorted(mine, key=lambda a: a.began_ns):
            while ended and ended[0][0] < answer.began_ns:
                floor = max(floor, heapq.heappop(ended)[1])
            if answer.is_read and answer.version < floor:
                found.append(f"user {user}: read v{answer.version} after v{floor} was answered")
    return found


def test_reads_never_go_back_across_api_processes_through_a_redis_restart(
    deployment: Deployment,
) -> None:
    first = deployment.start("api-1", consumer=False, cache_updater=False)
    second = deployment.start("api-2", consumer=False, relay=False, cache_updater=False)
    worker = deployment.start("worker", api=False, relay=False)
    users = [new_user() for _ in range(8)]
    traffic = Traffic([first.target, second.target], users, readers=4, writers=3)
    with traffic:
        wait_until(lambda: traffic.reads() >= 300, 60, "reads before the restart")
        run_services("down", "redis")
        reads_before = traffic.reads()
        wait_until(lambda: traffic.reads() >= reads_before + 100, 60, "reads while Redis is down")
        run_services("up", "redis")
        reads_before = traffic.reads()
        wait_until(lambda: traffic.reads() >= reads_before + 500, 90, "reads after the restart")
    assert not older_reads(traffic.answers), older_reads(traffic.answers)[:10]
    assert set(traffic.errors) <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, traffic.errors

    # Settled: every read, through either process, equals the account's newest journal entry.
    for target in (first.target, second.target):
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            wait_until(
                lambda stub=stub: all(
                    read_version(stub, u) == journal_version(stub, u) for u in users
                ),
                30,
                f"reads through {target} equal to the journal",
            )
    assert worker.process is not None and worker.process.poll() is None


def read_version(stub: pb_grpc.BalanceServiceStub, user: int) -> int:
    request = pb.GetBalanceRequest(user_id=user, currency="USD")
    return int(stub.GetBalance(request, timeout=10).balances[0].version)


def journal_version(stub: pb_grpc.BalanceServiceStub, user: int) -> int:
    """The version of the user's newest journal entry (paging through the journal)."""
    newest = 0
    while True:
        request = pb.ListJournalRequest(
            user_id=user, currency="USD", after_version=newest, limit=1000
        )
        entries = stub.ListJournal(request, timeout=10).entries
        if not entries:
            return newest
        newest = entries[-1].version


def test_an_api_process_cut_off_from_redis_and_killed_leaves_no_older_read(
    deployment: Deployment,
) -> None:
    """API process A reaches Redis through a proxy, B directly; the cache feed is stalled (a
    failpoint), so Redis holds only what answers wrote. A's Redis is cut, A answers v2
    APPLIED and is SIGKILLed at once: B must not read v1. Before the read fence A answered
    anyway and kept the write to replay later, which the kill lost: B read v1 until the
    next full sync (up to 5 minutes)."""
    redis_port = int(deployment.env["LEDGERD_CACHE_URL"].rsplit(":", 1)[1].split("/")[0])
    proxy = CuttableProxy(redis_port)
    worker = deployment.start(
        "worker", {"failpoints": "cache_updater.loop=sleep(60000)"}, api=False, relay=False
    )
    a = deployment.start(
        "api-a",
        {"cache_url": f"redis://127.0.0.1:{proxy.port}/0"},
        consumer=False,
        cache_updater=False,
    )
    b = deployment.start("api-b", consumer=False, relay=False, cache_updater=False)
    user = new_user()
    try:
        with grpc.insecure_channel(a.target) as channel:
            stub_a = pb_grpc.BalanceServiceStub(channel)
            first = stub_a.ChangeBalance(change(user, pb.DEPOSIT, "1", wait=True), timeout=30)
            assert first.status == pb.APPLIED
            with grpc.insecure_channel(b.target) as channel_b:
                stub_b = pb_grpc.BalanceServiceStub(channel_b)
                wait_until(lambda: read_version(stub_b, user) == 1, 30, "B reading v1")
            proxy.cut()
            second = stub_a.ChangeBalance(change(user, pb.DEPOSIT, "1", wait=True), timeout=30)
        assert second.status == pb.APPLIED and second.balance.version == 2
        a.kill()
        with grpc.insecure_channel(b.target) as channel_b:
            stub_b = pb_grpc.BalanceServiceStub(channel_b)
            assert read_version(stub_b, user) == 2
    finally:
        proxy.close()
    assert worker.process is not None and worker.process.poll() is None
