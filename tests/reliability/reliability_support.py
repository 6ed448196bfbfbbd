"""Shared by the fault-injection scenarios: the session timeout and the exactly-once check."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import grpc
from harness import ServerProcess
from harness.load import Load, balance_of

from ledgerd.v1 import balance_pb2_grpc as pb_grpc

# Kafka moves a silent consumer's partitions after this long (the broker's minimum).
SESSION_TIMEOUT_MS = 6000


def assert_exactly_once(load: Load, api: ServerProcess, users: list[int]) -> dict[str, Any]:
    """Every acknowledged change is APPLIED or REJECTED, once; audit passes; balances
    (as clients read them) equal the model of the applied changes. Returns the audit."""
    assert len(load.acknowledged) > 100, "the load was too small to mean anything"
    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        model = load.verify(stub)
        report = api.wait_settled(timeout_s=120)
        assert report["ok"], report["problems"]
        assert report["in_flight"] == 0
        assert report["journal_entries"] == report["requests"].get("APPLIED", 0)
        expected = {user: model.available[(user, "USD")] for user in users}
        deadline = time.monotonic() + 30
        while True:  # reads may come from the cache, which trails the store a little
            seen = {user: Decimal(balance_of(stub, user).available) for user in users}
            if seen == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert seen == expected
    return report
