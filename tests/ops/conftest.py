"""Operations artefacts (Prometheus rules, Grafana dashboard, container files) checked
against a live ledgerd and a real Prometheus."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from harness import ServerProcess
from harness.load import change, new_user

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that has served every kind of call, so each metric has samples."""
    server = ServerProcess(tmp_path_factory.mktemp("ops")).start()
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        user = new_user()
        stub.ChangeBalance(change(user, pb.DEPOSIT, "5", wait=True), timeout=10)
        stub.ChangeBalance(change(user, pb.WITHDRAW, "50", wait=True), timeout=10)
        stub.GetBalance(pb.GetBalanceRequest(user_id=user, currency="USD"), timeout=5)
        stub.GetBalance(pb.GetBalanceRequest(user_id=new_user(), currency="USD"), timeout=5)
    yield server
    server.stop()
