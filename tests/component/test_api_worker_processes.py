"""API workers as supervised components: replaced when they die, drained by SIGTERM, killed
when they do not stop, reported down when they keep dying; a worker notices its parent's end.

The child here is a small Python program standing in for ``ledgerd serve`` (the real one
is exercised in tests/integration/test_api_workers.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ledgerd.launch.serve_process import free_port
from ledgerd.runtime.supervisor import Policy, Supervisor
from ledgerd.runtime.workers import ApiWorker, watch_parent, worker_env, worker_metrics_addr

FAST = Policy(max_restarts=3, restart_window_s=60, backoff_base_s=0.01, backoff_max_s=0.05)
NO_PROBE = {"LEDGERD_METRICS_ADDR": "127.0.0.1:0"}  # judged by being alive, no HTTP

# Writes "started PID" to the file named by argv[1] once its SIGTERM handler is in place;
# on SIGTERM writes "drained PID" and exits 0.
DRAINING_CHILD = """
import os, signal, sys, time
def note(what):
    with open(sys.argv[1], "a") as out:
        out.write(f"{what} {os.getpid()}\\n")
def drain(*_):
    note("drained")
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
note("started")
while True:
    time.sleep(0.05)
"""
# Ignores SIGTERM; writes "started PID" like the one above.
STUBBORN_CHILD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1], "a") as out:
    out.write(f"started {os.getpid()}\\n")
while True:
    time.sleep(0.05)
"""
CRASHING_CHILD = "import sys; sys.exit(3)"


def started(notes: Path, pid: int | None) -> bool:
    return notes.exists() and f"started {pid}" in notes.read_text().splitlines()


async def until(condition: Callable[[], object], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


def worker(program: str, *args: str, stop_timeout_s: float = 10.0) -> ApiWorker:
    command = [sys.executable, "-c", program, *args]
    return ApiWorker(1, command, NO_PROBE, stop_timeout_s=stop_timeout_s, unresponsive_after_s=60.0)


def test_a_killed_worker_is_replaced_and_stop_drains_it(tmp_path: Path) -> None:
    """kill -9 of a worker: a new process takes its place, health names the signal;
    stopping sends SIGTERM, which the worker handles, and the stop counts as clean."""
    notes = tmp_path / "notes"
    child = worker(DRAINING_CHILD, str(notes))

    async def scenario() -> tuple[int, int, str]:
        supervisor = Supervisor(FAST)
        supervisor.add_task(child.name, child.run)
        supervisor.start()
        await until(lambda: started(notes, child.pid))
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await until(lambda: child.pid != first and started(notes, child.pid))
        detail = supervisor.health()[child.name].detail
        second = child.pid
        assert second is not None
        await supervisor.stop_all()
        return first, second, detail

    first, second, detail = asyncio.run(scenario())
    assert second != first
    assert f"api worker 1 (pid {first}) was killed by SIGKILL" in detail
    assert notes.read_text().splitlines() == [
        f"started {first}",
        f"started {second}",
        f"drained {second}",
    ]
    assert child.stopped_cleanly


def test_a_worker_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    """A worker still running stop_timeout_s after SIGTERM gets SIGKILL; the stop is unclean."""
    notes = tmp_path / "notes"
    child = worker(STUBBORN_CHILD, str(notes), stop_timeout_s=0.5)

    async def scenario() -> None:
        supervisor = Supervisor(FAST)
        supervisor.add_task(child.name, child.run)
        supervisor.start()
        await until(lambda: started(notes, child.pid))
        await supervisor.stop_all()

    asyncio.run(scenario())
    assert not child.stopped_cleanly
    assert child.state == f"stopped ({-signal.SIGKILL})"


def test_a_worker_that_does_not_answer_its_probe_is_replaced(tmp_path: Path) -> None:
    """A worker whose /readyz never answers is killed after unresponsive_after_s and
    replaced, like gunicorn's worker timeout."""
    notes = tmp_path / "notes"
    silent = {"LEDGERD_METRICS_ADDR": f"127.0.0.1:{free_port()}"}  # nothing listens there
    command = [sys.executable, "-c", DRAINING_CHILD, str(notes)]
    child = ApiWorker(1, command, silent, stop_timeout_s=10.0, unresponsive_after_s=0.5)

    async def scenario() -> tuple[int, str]:
        supervisor = Supervisor(FAST)
        supervisor.add_task(child.name, child.run)
        supervisor.start()
        await until(lambda: child.pid is not None)
        first = child.pid
        assert first is not None
        await until(lambda: child.pid != first)
        detail = supervisor.health()[child.name].detail
        await supervisor.stop_all()
        return first, detail

    first, detail = asyncio.run(scenario())
    assert f"api worker 1 (pid {first}) was killed by SIGKILL" in detail
    assert not child.ready


def test_a_worker_that_keeps_dying_is_down() -> None:
    """Past the restart limit within the window, the worker's component is down, with why."""
    child = worker(CRASHING_CHILD)
    down: list[str] = []

    async def scenario() -> str:
        supervisor = Supervisor(FAST, on_down=down.append)
        supervisor.add_task(child.name, child.run)
        supervisor.start()
        await until(lambda: down)
        health = supervisor.health()[child.name]
        await supervisor.stop_all()
        assert not health.ok
        return health.detail

    detail = asyncio.run(scenario())
    assert down[0] == "api_worker:1"
    assert detail.startswith("down: failed 4 times")
    assert "exited with status 3" in detail


def test_a_worker_notices_its_parent_is_gone() -> None:
    """The end of the parent's pipe on stdin calls on_parent_gone (once)."""
    read_end, write_end = os.pipe()
    gone = threading.Event()
    supervisor = Supervisor(FAST)
    supervisor.add_thread("parent-watch", watch_parent(gone.set, read_end))
    supervisor.start()
    try:
        assert not gone.wait(0.2)
        os.close(write_end)  # what the kernel does when the parent dies
        assert gone.wait(10)
    finally:
        asyncio.run(supervisor.stop_all())
        os.close(read_end)


def test_worker_ports_and_roles() -> None:
    """Worker i probes on the parent's metrics port plus i and runs only the API role."""
    assert worker_metrics_addr("0.0.0.0:9091", 2) == "0.0.0.0:9093"
    assert worker_metrics_addr("127.0.0.1:0", 2) == "127.0.0.1:0"
    env = worker_env({"LEDGERD_START_RELAY": "true", "PATH": "/bin"}, "0.0.0.0:9091", 1)
    assert env["PATH"] == "/bin"
    assert env["LEDGERD_API_WORKER_INDEX"] == "1"
    assert env["LEDGERD_METRICS_ADDR"] == "0.0.0.0:9092"
    roles = ("API", "RELAY", "CONSUMER", "CACHE_UPDATER")
    assert [env[f"LEDGERD_START_{role}"] for role in roles] == ["true", "false", "false", "false"]
