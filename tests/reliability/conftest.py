"""Fault injection on the real stack: every scenario drives a load, injects a fault,
recovers, and then proves nothing acknowledged was lost or applied twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledgerd.testing import Deployment, ServerProcess, run_services
from ledgerd.testing.load import Load, balance_of
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

# Kafka moves a silent consumer's partitions after this long (the broker's minimum).
SESSION_TIMEOUT_MS = 6000


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    made = Deployment(tmp_path, kafka_session_timeout_ms=str(SESSION_TIMEOUT_MS))
    yield made
    made.kill_all()
    run_services("up")  # whatever a scenario stopped is back for the next one


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
