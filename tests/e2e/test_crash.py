"""SIGKILL the server in the middle of a load: nothing acknowledged is lost or applied twice."""

from __future__ import annotations

from decimal import Decimal

import grpc
from e2e_support import Load, balance_of, new_user
from harness import ServerProcess

from ledgerd.v1 import balance_pb2_grpc as pb_grpc


def test_sigkill_mid_load_loses_nothing_acknowledged_and_applies_nothing_twice(
    fresh_server: ServerProcess,
) -> None:
    """Kill -9 during a load, restart: every acknowledged change is applied once; audit passes."""
    # The restarted consumer gets the killed one's partitions once Kafka has given up on
    # it: after the session timeout, here the broker's minimum instead of the default 10 s.
    fresh_server.env["LEDGERD_KAFKA_SESSION_TIMEOUT_MS"] = "6000"
    server = fresh_server.start()
    users = [new_user() for _ in range(5)]
    with Load(server.target, users) as load:
        load.wait_acknowledged(150)
        server.kill()
        load.wait_failed()  # clients met the dead server
        server.start()
        load.wait_acknowledged(100)  # and the restarted one accepts their changes
    assert len(load.acknowledged) > 100, "the load was too small to mean anything"

    # Clients retry what got no answer, with the same request_id: stored at most once.
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        model = load.verify(stub)
        server.wait_settled()
        for user in users:
            balance = balance_of(stub, user)
            assert Decimal(balance.available) == model.available[(user, "USD")]
    report = server.wait_settled()
    assert report["ok"], report["problems"]
    assert report["in_flight"] == 0
    assert report["journal_entries"] == report["requests"].get("APPLIED", 0)
