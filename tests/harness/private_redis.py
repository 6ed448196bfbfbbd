"""A Redis server of a test's own, for what the shared one must not be put through:
a full memory, an eviction policy, a restart that brings back an older snapshot."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis

from ledgerd.launch.serve_process import free_port


class PrivateRedis:
    """One redis-server on a free port, its data (an RDB file) in ``directory``."""

    def __init__(self, directory: Path, options: Sequence[str]) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._options = list(options)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--dbfilename", "dump.rdb", "--save", "",
             "--appendonly", "no", *self._options],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """Stop at once, as a crash does: what was not saved is lost."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


@contextmanager
def private_redis(directory: Path, *options: str) -> Iterator[PrivateRedis]:
    """A started private Redis (``options`` as redis-server flags), killed afterwards."""
    server = PrivateRedis(directory, options)
    server.start()
    try:
        yield server
    finally:
        server.kill()
