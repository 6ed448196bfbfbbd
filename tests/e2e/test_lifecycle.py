"""Start-up, graceful shutdown, restart and metrics of a real server process."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import grpc
from e2e_support import balance_of, change, new_user
from harness import ServerProcess, ledgerd_command, wait_for

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


def test_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    """An invalid LEDGERD_PARTITIONS makes `ledgerd serve` exit non-zero, naming it."""
    completed = subprocess.run(
        ledgerd_command("serve"),
        env={"LEDGERD_DATA_DIR": str(tmp_path), "LEDGERD_PARTITIONS": "many", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode != 0
    assert "LEDGERD_PARTITIONS" in completed.stderr


def test_sigterm_finishes_in_flight_work_and_restart_keeps_balances(
    fresh_server: ServerProcess,
) -> None:
    """SIGTERM exits 0 after committing; a restart on the same data serves the same balances."""
    server = fresh_server.start()
    user = new_user()
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        for _ in range(20):
            stub.ChangeBalance(change(user, pb.DEPOSIT, "1.5"), timeout=10)
    assert server.stop() == 0
    server.start()
    report = server.wait_settled()
    assert report["ok"] and report["in_flight"] == 0
    # Polled, not read once: the relay stops after the consumer, so changes it published
    # last may apply only after the restart, and the cache tier (Redis, fed after each
    # commit) may still hold the version before them just after the store settles. That is
    # lag, which the read contract allows for changes never answered as applied (these
    # were wait=false); a lost or doubled change never reads ("30", 20).
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)

        def read() -> tuple[str, int]:
            balance = balance_of(stub, user)
            return balance.available, balance.version

        wait_for(read, ("30", 20), 10.0, "the restarted server reads every change")


def test_metrics_endpoint_exposes_request_and_consumer_metrics(fresh_server: ServerProcess) -> None:
    """/metrics serves the RPC, outbox and consumer metrics after some traffic."""
    server = fresh_server.start()
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)
        stub.ChangeBalance(change(new_user(), pb.DEPOSIT, "1", wait=True), timeout=10)
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    for name in (
        'ledgerd_rpc_requests_total{grpc_code="OK",grpc_method="ChangeBalance",'
        'grpc_service="ledgerd.v1.BalanceService",grpc_type="unary",protocol="grpc"}',
        "ledgerd_rpc_latency_seconds_bucket",
        'ledgerd_outbox_requests_total{status="sent"}',
        "ledgerd_consumer_batch_messages_bucket",
        'ledgerd_changes_total{outcome="applied"}',
        "ledgerd_consumer_lag_messages",
    ):
        assert name in text, name


def test_api_workers_are_refused_on_the_embedded_stack(tmp_path: Path) -> None:
    """`ledgerd serve --api-workers 2` on SQLite, the embedded log and the memory cache exits
    2 before starting anything, saying why and naming LEDGERD_API_WORKERS."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERD_")}
    completed = subprocess.run(
        ledgerd_command("serve", "--api-workers", "2"),
        env={**inherited, "LEDGERD_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "LEDGERD_API_WORKERS=2 needs the production stack" in completed.stderr
    assert "LEDGERD_LOG_URL (embedded:)" in completed.stderr
    assert not (tmp_path / "ledgerd.sqlite").exists()
