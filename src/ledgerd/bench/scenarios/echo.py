"""echo: the yardstick, a gRPC server that answers ChangeBalance without doing anything
(ledgerd.bench.echo), driven like change-single; the other figures are read against it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

from ledgerd.bench.cpu import CpuMeter, Watched
from ledgerd.bench.scenarios.calls import drive, single_changes, warm_up
from ledgerd.bench.scenarios.common import Options, Ran
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.launch.serve_process import free_port


def run(options: Options, _: Accounts, factory: ChangeFactory, meter: CpuMeter) -> Ran:
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-m", "ledgerd.bench.echo", str(port)])
    try:
        _wait_listening(echo, port, timeout_s=30)
        target = f"127.0.0.1:{port}"
        calls = single_changes(factory)
        warm_up(options, target, calls, options.concurrency)
        meter.start([Watched("echo server", echo.pid)])
        measured = asyncio.run(drive(options, target, calls, "echo", options.concurrency))
        meter.stop(measured.operations)
        return Ran(measured)
    finally:
        echo.terminate()
        echo.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, timeout_s: float) -> None:
    """Until ``process`` accepts connections on ``port`` (a loaded machine may take more
    than a second to start Python and gRPC)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the echo server exited ({process.returncode}) before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the echo server not listening after {timeout_s} s") from None
            time.sleep(0.1)
