"""The embedded data directory belongs to one process: a second `ledgerd serve` on it exits
at once with a clear message, and a crashed holder leaves no stale lock."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import ServerProcess, ledgerd_command

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc


def test_a_second_server_on_the_data_dir_exits_and_a_killed_holder_frees_it(
    tmp_path: Path,
) -> None:
    """While one server runs, another on its LEDGERD_DATA_DIR exits non-zero naming the
    directory's holder; once the holder is SIGKILLed, a new server starts on it."""
    first = ServerProcess(tmp_path).start()
    second = ServerProcess(tmp_path)  # same directory, its own ports
    try:
        refused = subprocess.run(
            ledgerd_command("serve"), env=second.env, capture_output=True, timeout=60, check=False
        )
        assert refused.returncode != 0
        message = refused.stderr.decode()
        assert "in use by another ledgerd process" in message
        assert first.process is not None and f"pid {first.process.pid}" in message
        with first.channel() as channel:  # untouched by the attempt
            answer = pb_grpc.BalanceServiceStub(channel).HealthCheck(
                pb.HealthCheckRequest(), timeout=10
            )
        assert answer.status == pb.HealthCheckResponse.SERVING

        first.kill()
        second.start()
    finally:
        first.kill()
        second.stop()
