"""SIGKILL the server in the middle of a load: nothing acknowledged is lost or applied twice."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import grpc
from e2e_support import Model, balance_of, change, final_status, new_user

from ledgerd.testing import ServerProcess
from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

CLIENTS = 8


class Load:
    """Clients sending changes until stopped, recording what the server acknowledged."""

    def __init__(self, target: str, users: list[int]) -> None:
        self.target = target
        self.users = users
        self.acknowledged: list[pb.ChangeBalanceRequest] = []
        self.unanswered: list[pb.ChangeBalanceRequest] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.BalanceServiceStub(channel)
            while not self.stop.is_set():
                kind = pb.DEPOSIT if rng.random() < 0.7 else pb.WITHDRAW
                request = change(rng.choice(self.users), kind, str(rng.randint(1, 100)))
                try:
                    stub.ChangeBalance(request, timeout=2)
                except grpc.RpcError:
                    with self.lock:
                        self.unanswered.append(request)
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.acknowledged.append(request)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_sigkill_mid_load_loses_nothing_acknowledged_and_applies_nothing_twice(
    fresh_server: ServerProcess,
) -> None:
    """Kill -9 during a load, restart: every acknowledged change is applied once; audit passes."""
    server = fresh_server.start()
    users = [new_user() for _ in range(5)]
    with Load(server.target, users) as load:
        time.sleep(1.5)
        server.kill()
        time.sleep(0.3)
        server.start()
        time.sleep(1.0)
    assert len(load.acknowledged) > 100, "the load was too small to mean anything"

    # Clients retry what got no answer, with the same request_id: stored at most once.
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        retried = [stub.ChangeBalance(r, timeout=10) for r in load.unanswered]
        model = Model.empty()
        for request in load.acknowledged + load.unanswered:
            result = final_status(stub, request.request_id)
            assert result.status in (pb.APPLIED, pb.REJECTED), request.request_id
            if result.status == pb.APPLIED:
                model.apply(request)
        for user in users:
            balance = balance_of(stub, user)
            assert Decimal(balance.available) == model.available[(user, "USD")]
    assert all(r.status != pb.CHANGE_STATUS_UNSPECIFIED for r in retried)
    report = server.wait_settled()
    assert report["ok"], report["problems"]
    assert report["in_flight"] == 0
    assert report["journal_entries"] == report["requests"].get("APPLIED", 0)
