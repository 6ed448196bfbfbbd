"""API worker processes: ``LEDGERD_API_WORKERS=N`` serves the API from N child processes.

The parent runs the other roles itself and starts worker ``i`` (1..N) as
``ledgerd serve`` with only the API role, ``LEDGERD_API_WORKER_INDEX=i`` (so it
never starts workers of its own) and its operations port on the parent's plus
``i``. Every worker binds the same gRPC (and REST) address with
``SO_REUSEPORT``; the kernel spreads new connections over the listeners, and a
dead worker's listener closes with it, so connections go to the others.

As in uvicorn's multiprocess supervisor and gunicorn's arbiter, the workers know
nothing of each other, and the parent owns each of them as one supervised
component (``api_worker:i``): a worker that exits while not asked to (a crash,
``kill -9``, a worker whose component is down) is a failure of that component,
replaced with the supervisor's backoff and restart limit, and shown in health.
Workers are subprocesses, never ``fork()`` of a parent that has threads and
gRPC state. Stopping sends SIGTERM, so each worker drains as a lone process
would (in-flight calls finish, queued changes commit), and SIGKILL after
``stop_timeout_s``. A worker's stdin is a pipe from the parent: when the
parent dies without stopping it (``kill -9``), the pipe's end reaches the
worker, which stops instead of serving on as an orphan.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import aiohttp
import structlog

from ledgerd.runtime.supervisor import Lifeline, ThreadRun, sleep_unless_stopping

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.1  # how soon a worker's death is noticed
PROBE_INTERVAL_S = 1.0  # how often the parent asks each worker's /readyz
PROBE_TIMEOUT_S = 2.0


class WorkerExited(RuntimeError):
    """A worker process ended although the parent did not ask it to."""

    def __init__(self, index: int, pid: int, returncode: int) -> None:
        how = (
            f"was killed by {signal.Signals(-returncode).name}"
            if returncode < 0
            else f"exited with status {returncode}"
        )
        super().__init__(f"api worker {index} (pid {pid}) {how}")


def worker_metrics_addr(metrics_addr: str, index: int) -> str:
    """Worker ``index``'s operations address: the parent's port plus ``index``
    (port 0, "any free port", stays 0)."""
    host, _, port = metrics_addr.rpartition(":")
    return f"{host}:{int(port) + index if int(port) else 0}"


def worker_env(base: Mapping[str, str], metrics_addr: str, index: int) -> dict[str, str]:
    """The environment of worker ``index``: the parent's, with only the API role."""
    return {
        **base,
        "LEDGERD_API_WORKER_INDEX": str(index),
        "LEDGERD_START_API": "true",
        "LEDGERD_START_RELAY": "false",
        "LEDGERD_START_CONSUMER": "false",
        "LEDGERD_START_CACHE_UPDATER": "false",
        "LEDGERD_METRICS_ADDR": worker_metrics_addr(metrics_addr, index),
    }


def serve_command() -> list[str]:
    """``ledgerd serve`` with this interpreter (and so this installation)."""
    return [sys.executable, "-m", "ledgerd.cli", "serve"]


class ApiWorker:
    """Worker ``index``: one child process at a time, run by the supervised loop ``run``."""

    def __init__(
        self,
        index: int,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        stop_timeout_s: float,
        unresponsive_after_s: float,
    ) -> None:
        self.index = index
        self.name = f"api_worker:{index}"
        self._command = list(command)
        self._env = dict(env)
        self._stop_timeout_s = stop_timeout_s
        self._unresponsive_after_s = unresponsive_after_s
        host, _, port = env["LEDGERD_METRICS_ADDR"].rpartition(":")
        local = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host  # noqa: S104
        # With port 0 the worker's port is unknown here: it is judged by being alive.
        self._readyz = f"http://{local}:{port}/readyz" if int(port) else None
        self.pid: int | None = None
        self.ready = False
        self.state = "not started"
        self.stopped_cleanly = True  # every stop so far ended with exit status 0

    def describe(self) -> str:
        return f"{self.index}: pid {self.pid}, {self.state}"

    async def run(self, lifeline: Lifeline) -> None:
        """Supervised loop: start the worker, watch it; raises WorkerExited when it dies."""
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            self._command,
            env=self._env,
            stdin=subprocess.PIPE,
            # Its own process group: a terminal's Ctrl-C reaches the parent alone, which
            # stops the workers itself rather than finding them exited and replacing them.
            process_group=0,
        )
        self.pid, self.ready, self.state = process.pid, self._readyz is None, "starting"
        log.info("api worker started", api_worker=self.index, pid=process.pid, probe=self._readyz)
        answered_at = time.monotonic()
        next_probe_at = 0.0
        try:
            timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while not lifeline.stopping:
                    lifeline.beat()
                    returncode = process.poll()
                    if returncode is not None:
                        raise WorkerExited(self.index, process.pid, returncode)
                    now = time.monotonic()
                    if self._readyz is not None and now >= next_probe_at:
                        next_probe_at = now + PROBE_INTERVAL_S
                        if await self._probe(session):
                            answered_at = now
                        elif now - answered_at > self._unresponsive_after_s:
                            # Like gunicorn's worker timeout: a hung worker is replaced.
                            log.error(
                                "api worker not answering its probe; killing it",
                                api_worker=self.index,
                                pid=process.pid,
                                silent_s=round(now - answered_at),
                            )
                            process.kill()
                    await sleep_unless_stopping(lifeline, POLL_INTERVAL_S)
        finally:
            self.ready = False
            if process.poll() is None:
                await self._stop(process)
            else:
                self.state = f"exited ({process.returncode})"
            if process.stdin is not None:
                process.stdin.close()

    async def _probe(self, session: aiohttp.ClientSession) -> bool:
        """Ask the worker's /readyz; True when it answered at all."""
        assert self._readyz is not None
        try:
            async with session.get(self._readyz) as answer:
                self.ready = answer.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.ready = False
            if self.state != "starting":  # one still starting has until the same deadline
                self.state = "not answering"
            return False
        self.state = "ready" if self.ready else "not ready"
        return True

    async def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM, so the worker drains; SIGKILL if it is not gone within the timeout."""
        self.state = "stopping"
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL_S)
        if process.poll() is None:
            log.error(
                "api worker did not stop in time; killing it",
                api_worker=self.index,
                pid=process.pid,
                timeout_s=self._stop_timeout_s,
            )
            process.kill()
            process.wait()
        self.state = f"stopped ({process.returncode})"
        if process.returncode != 0:
            self.stopped_cleanly = False
        log.info(
            "api worker stopped", api_worker=self.index, pid=process.pid, code=process.returncode
        )


def watch_parent(on_parent_gone: Callable[[], None], stdin_fd: int = 0) -> ThreadRun:
    """A worker's supervised loop: calls ``on_parent_gone`` once its stdin, the parent's
    pipe, reaches its end (the parent died without stopping this worker)."""

    def watch(lifeline: Lifeline) -> None:
        parent_gone = False
        while not lifeline.stopping:
            lifeline.beat()
            if parent_gone:
                lifeline.wait(1.0)  # the process is stopping: nothing more to watch
                continue
            readable, _, _ = select.select([stdin_fd], [], [], 1.0)
            if readable and not os.read(stdin_fd, 4096):
                parent_gone = True
                log.error("parent process gone; stopping this api worker")
                on_parent_gone()

    return watch
