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


class SharedServers:
    """One server per stack for the whole session, started when first asked for.

    Every start of a production or sharded server creates and migrates databases, creates
    topics and joins a consumer group; the modules using ``server`` need none of that
    fresh, since their tests isolate by new users and request ids and neither stop nor
    reconfigure the server (those use ``fresh_server`` or a fixture of their own).
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._started: dict[str, ServerProcess] = {}

    def of(self, stack: str) -> ServerProcess:
        process = self._started.get(stack)
        if process is None:
            data_dir = self._tmp_path_factory.mktemp(f"ledgerd-{stack}")
            process = ServerProcess(data_dir, stack_env(stack)).start()
            self._started[stack] = process
        running = process.process is not None and process.process.poll() is None
        assert running, f"the shared {stack} server exited:\n{process.log_tail()}"
        return process

    def stop_all(self) -> None:
        for process in self._started.values():
            process.stop()


@pytest.fixture(scope="session")
def shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServers]:
    servers = SharedServers(tmp_path_factory)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def server(stack: str, shared_servers: SharedServers) -> ServerProcess:
    """The stack's server, shared by the modules of the session (SharedServers)."""
    return shared_servers.of(stack)


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
