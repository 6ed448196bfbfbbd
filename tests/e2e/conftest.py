"""A real ``ledgerd serve`` process driven over gRPC, on each stack.

``embedded``: SQLite, embedded log, memory cache (the `make run` default).
``production``: MariaDB, Apache Kafka and Redis from scripts/services, each
server with its own database, topics, consumer group and key prefix.
``sharded``: the production stack with two database shards, one on each MariaDB
server of scripts/services (LEDGERD_STORE_SHARDS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from e2e_support import stack_env
from harness import ServerProcess

from ledgerd.v1 import balance_pb2_grpc as pb_grpc

STACKS = ["embedded", "production", "sharded"]


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ledgerd"), stack_env(stack)).start()
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
def fresh_server(stack: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or stop it."""
    process = ServerProcess(tmp_path / "ledgerd", stack_env(stack))
    yield process
    if process.process is not None:
        process.kill()
