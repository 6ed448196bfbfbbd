"""LEDGERD_API_WORKERS=N on MariaDB, Kafka and Redis: N API processes behind one port under a
parent that runs the other roles, replaces a worker that dies and drains them all on SIGTERM.

Which worker answered is visible: every worker's HealthCheck has an ``api_worker`` component
("i of N, pid P"), and one gRPC channel (with its own subchannel pool) is one connection,
so one worker, for all of its calls."""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import ServerProcess, free_port, production_env, wait_until
from harness.load import Load, change, final_status, new_user

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

WORKERS = 2


def free_port_run(length: int) -> int:
    """A port P with P .. P + length - 1 all free now (worker i probes on P + i)."""
    while True:
        base = free_port()
        if all(port_free(port) for port in range(base + 1, base + length)):
            return base


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """An all-roles process with WORKERS API workers, on a fresh database and topics."""
    metrics_port = free_port_run(WORKERS + 1)
    env = {
        **production_env(),
        "LEDGERD_API_WORKERS": str(WORKERS),
        "LEDGERD_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
    }
    process = ServerProcess(tmp_path / "parent", env)
    process.metrics_port = metrics_port
    process.start(timeout_s=60)
    wait_until(lambda: parent_ready_workers(process) == WORKERS, 60, "every worker ready")
    yield process
    if process.process is not None:
        process.stop()


def probe(port: int, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def parent_components(server: ServerProcess) -> dict[str, str]:
    components: dict[str, str] = probe(server.metrics_port)[1]["components"]
    return components


def parent_ready_workers(server: ServerProcess) -> int:
    """How many workers the parent's readiness counts as ready ("K of N api workers ready")."""
    return int(parent_components(server)["api"].split(" of ")[0])


def worker_pid(server: ServerProcess, index: int) -> int:
    """The pid worker ``index`` reports on its own operations port (the parent's plus index)."""
    _, body = probe(server.metrics_port + index)
    return int(body["components"]["api_worker"].rsplit("pid ", 1)[1])


@contextmanager
def connection(server: ServerProcess) -> Iterator[tuple[pb_grpc.BalanceServiceStub, str]]:
    """A new connection to the shared port, and the worker behind it ("i of N, pid P")."""
    options = [("grpc.use_local_subchannel_pool", 1)]  # never reuse another channel's socket
    with grpc.insecure_channel(server.target, options=options) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        answer = stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
        yield stub, answer.components["api_worker"]


def deposit_and_wait(stub: pb_grpc.BalanceServiceStub, user: int) -> pb.ChangeResult:
    request = change(user, pb.DEPOSIT, "5", wait=True)
    result: pb.ChangeResult = stub.ChangeBalance(request, timeout=30)
    return result


def test_calls_through_one_port_reach_every_worker_and_apply(server: ServerProcess) -> None:
    """Connections to the one port land on both workers; changes with wait=true sent through
    each worker come back APPLIED, and the balance counts every one of them."""
    user = new_user()
    applied_by: Counter[str] = Counter()

    def both_workers_applied_two() -> bool:
        with connection(server) as (stub, worker):
            result = deposit_and_wait(stub, user)
            assert result.status == pb.APPLIED, result
            applied_by[worker.split(",")[0]] += 1
        return len(applied_by) == WORKERS and min(applied_by.values()) >= 2

    wait_until(both_workers_applied_two, 120, "changes applied through each worker")
    assert set(applied_by) == {f"{i} of {WORKERS}" for i in range(1, WORKERS + 1)}
    with connection(server) as (stub, _):
        (balance,) = stub.GetBalance(pb.GetBalanceRequest(user_id=user, currency="USD")).balances
    assert balance.available == str(5 * sum(applied_by.values()))
    components = parent_components(server)
    assert components["api"].startswith(f"{WORKERS} of {WORKERS} api workers ready")
    for index in range(1, WORKERS + 1):
        assert components[f"component:api_worker:{index}"] == "ok"


def test_a_killed_worker_is_replaced_and_calls_keep_succeeding(server: ServerProcess) -> None:
    """kill -9 of worker 1: calls through the port still succeed (on worker 2), the parent
    starts a new worker 1 (new pid) that takes calls, and its health names the kill."""
    killed = worker_pid(server, 1)
    os.kill(killed, signal.SIGKILL)
    wait_until(
        lambda: "SIGKILL" in parent_components(server)["component:api_worker:1"],
        30,
        "the parent noticing worker 1's death",
    )
    user = new_user()
    for _ in range(10):
        with connection(server) as (stub, _):
            assert deposit_and_wait(stub, user).status == pb.APPLIED
    replacement = wait_until(
        lambda: (pid := worker_pid(server, 1)) != killed and pid,
        60,
        "a new worker 1",
        ignoring=(OSError,),
    )
    wait_until(lambda: parent_ready_workers(server) == WORKERS, 60, "both workers ready again")

    def replacement_answers() -> bool:
        with connection(server) as (stub, worker):
            assert deposit_and_wait(stub, user).status == pb.APPLIED
            return worker == f"1 of {WORKERS}, pid {replacement}"

    wait_until(replacement_answers, 60, "a call answered by the new worker 1")
    detail = parent_components(server)["component:api_worker:1"]
    assert f"api worker 1 (pid {killed}) was killed by SIGKILL" in detail
    assert server.log_events("api worker started")[-1]["pid"] == replacement


def test_sigterm_drains_every_worker_and_loses_nothing(server: ServerProcess) -> None:
    """SIGTERM to the parent under load: every process exits, the parent with 0, and every
    change a worker acknowledged is APPLIED (after a restart publishes what was left)."""
    workers = [worker_pid(server, index) for index in range(1, WORKERS + 1)]
    parent = server.process
    assert parent is not None
    users = [new_user() for _ in range(20)]
    with Load(server.target, users, clients=6, withdraw_share=0.0) as load:
        load.wait_acknowledged(200)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(90) == 0
    server.process = None
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    stopped = server.log_events("api worker stopped")
    assert sorted(record["code"] for record in stopped) == [0] * WORKERS
    assert len(load.acknowledged) >= 200

    server.start(timeout_s=60)  # the same database and topics: anything unpublished goes now
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        statuses = Counter(
            pb.ChangeStatus.Name(final_status(stub, request.request_id).status)
            for request in load.acknowledged
        )
    assert statuses == {"APPLIED": len(load.acknowledged)}
    assert server.wait_settled()["ok"]


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_workers_stop_when_the_parent_is_killed(server: ServerProcess) -> None:
    """kill -9 of the parent leaves no worker serving as an orphan: each sees its parent's
    pipe close and stops, and the port is free again."""
    workers = [worker_pid(server, index) for index in range(1, WORKERS + 1)]
    server.kill()
    wait_until(lambda: all(map(process_gone, workers)), 60, "every worker gone")
    assert len(server.log_events("parent process gone; stopping this api worker")) == WORKERS
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", server.grpc_port))
