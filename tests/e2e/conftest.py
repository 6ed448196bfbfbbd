"""A real ``ledgerd serve`` process on the embedded default, driven over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ledgerd.testing import ServerProcess
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ledgerd")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.BalanceServiceStub:
    return pb_grpc.BalanceServiceStub(channel)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or stop it."""
    process = ServerProcess(tmp_path / "ledgerd")
    yield process
    if process.process is not None:
        process.kill()
