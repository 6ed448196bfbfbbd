"""``ledgerd serve`` child processes: start one with its own ports and data directory,
wait until it serves, read its metrics, stop it; and where the real services of
scripts/services listen, with settings that isolate a server on them.

The benchmark (ledgerd.bench) and the test harness (tests/harness) both build on this
module, and neither on the other. Shipped in the wheel, so it assumes no source checkout
and never drops a database: a production deployment gets a database name nobody has
used, which the server's migration creates.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Ports this process handed out lately: a server launched but not yet listening leaves
# its port free to a probe, so a later pick must keep clear of it and of the ports its API
# workers' metrics take (the port plus the worker's index), and they of the pick's.
_RECENT: deque[int] = deque(maxlen=512)
_WORKER_SPAN = 8
# How many ports below the ephemeral range free_port picks from.
_LISTENER_RANGE = 12000


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the kernel's ephemeral range.

    A port the kernel picks (bind to 0) lies in the range it also gives outgoing
    connections their local ports from: between this probe and the server's own bind,
    any client socket nearby (to Kafka, MariaDB, Redis) can take it, and in CI one did.
    Below that range only listeners take ports.
    """
    low, high = _listener_ports()
    for _ in range(1000):
        port = random.randrange(low, high - _WORKER_SPAN)  # noqa: S311 (a spread, not a secret)
        if any(abs(port - earlier) <= _WORKER_SPAN for earlier in _RECENT):
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _RECENT.append(port)
        return port
    raise RuntimeError(f"no free TCP port in {low}-{high - 1}")


def _listener_ports() -> tuple[int, int]:
    """The ports below the ephemeral range (Linux's default is 32768-60999)."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    high = max(ephemeral_low, 4096)
    return max(1024, high - _LISTENER_RANGE), high


def ledgerd_command(*args: str) -> list[str]:
    """The command line running ``ledgerd`` with this interpreter."""
    return [sys.executable, "-m", "ledgerd.cli", *args]


class ServerProcess:
    """``ledgerd serve`` in a child process, with its own ports and data directory."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        # Settings come only from here: a LEDGERD_* variable of the caller's shell (say,
        # from `eval "$(scripts/services env)"`) must not leak into a child server.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LEDGERD_") or k.startswith("LEDGERD_TEST_")
        }
        self.env = {
            **inherited,
            "LEDGERD_DATA_DIR": str(data_dir),
            "LEDGERD_GRPC_ADDR": f"127.0.0.1:{self.grpc_port}",
            "LEDGERD_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout_s: float = 30.0) -> Self:
        self.launch()
        self.wait_serving(timeout_s)
        return self

    def launch(self) -> None:
        """Start the process without waiting for it to serve (``wait_serving`` waits)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ledgerd_command("serve"), env=self.env, stdout=log, stderr=log
        )
        log.close()

    def channel(self) -> grpc.Channel:
        """A channel to the server; over TLS, trusting its own certificate, when it has one."""
        certificate = self.env.get("LEDGERD_TLS_CERT_FILE")
        if certificate:
            credentials = grpc.ssl_channel_credentials(Path(certificate).read_bytes())
            return grpc.secure_channel(
                self.target, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
            )
        return grpc.insecure_channel(self.target)

    @property
    def serves_api(self) -> bool:
        return self.env.get("LEDGERD_START_API", "true").lower() not in ("false", "0", "no")

    def wait_serving(self, timeout_s: float) -> None:
        """Until HealthCheck says SERVING (or, without the API role, /metrics answers)."""
        deadline = time.monotonic() + timeout_s
        if not self.serves_api:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"

            def metrics_answer() -> bool:
                with urllib.request.urlopen(url, timeout=1.0):
                    return True

            self._poll_until(metrics_answer, deadline, "metrics not up")
            return
        # The standard health service: open even when requests must be signed.
        with self.channel() as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="ledgerd.v1.BalanceService")

            def serving() -> bool:
                answer = health.Check(request, timeout=1.0)
                return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

            self._poll_until(serving, deadline, "not serving")

    def _poll_until(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Poll ``ready`` (connection errors count as not ready) until true or the deadline."""
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ledgerd exited early:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except (grpc.RpcError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"ledgerd {what}:\n{self.log_tail()}")
            time.sleep(0.1)

    def metric(self, name: str) -> float:
        """The sum of a metric's samples whose line starts with ``name`` on /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as answer:
            text = answer.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process = None
        return code


class services:
    """Where the real MariaDB, Kafka and Redis (of scripts/services) listen."""

    @staticmethod
    def mysql_server_url() -> str:
        return os.environ.get("LEDGERD_TEST_MYSQL_URL", "mysql://ledgerd:ledgerd@127.0.0.1:3306")

    @staticmethod
    def mysql2_server_url() -> str:
        """The second MariaDB (scripts/services mariadb2), for shard 1."""
        return os.environ.get("LEDGERD_TEST_MYSQL2_URL", "mysql://ledgerd:ledgerd@127.0.0.1:3307")

    @staticmethod
    def kafka_bootstrap() -> str:
        return os.environ.get("LEDGERD_TEST_KAFKA", "127.0.0.1:9092")

    @staticmethod
    def redis_url(db: int = 0) -> str:
        return os.environ.get("LEDGERD_TEST_REDIS_URL", "redis://127.0.0.1:6379") + f"/{db}"


def fresh_database_url() -> str:
    """A MySQL URL naming a database no one has used (created by ``migrate``)."""
    return f"{services.mysql_server_url()}/ledgerd_t_{uuid.uuid4().hex[:12]}"


def fresh_shard_urls(count: int) -> list[str]:
    """``count`` new MySQL databases, shard i on MariaDB server i mod 2 (scripts/services
    runs two), all named alike but for the shard suffix."""
    servers = [services.mysql_server_url(), services.mysql2_server_url()]
    tag = uuid.uuid4().hex[:12]
    return [f"{servers[i % len(servers)]}/ledgerd_t_{tag}_s{i}" for i in range(count)]


def production_env(store_url: str | None = None, *, shards: int = 1) -> dict[str, str]:
    """Settings for a server on MariaDB + Kafka + Redis, isolated from every other one:
    its own database (or ``shards`` databases, on both MariaDB servers), topics, consumer
    group and cache key prefix."""
    tag = uuid.uuid4().hex[:10]
    if shards > 1:
        store = {"LEDGERD_STORE_SHARDS": ",".join(fresh_shard_urls(shards))}
    else:
        store = {"LEDGERD_STORE_URL": store_url or fresh_database_url()}
    return {
        **store,
        "LEDGERD_LOG_URL": f"kafka://{services.kafka_bootstrap()}",
        "LEDGERD_CACHE_URL": services.redis_url(),
        "LEDGERD_TOPIC": f"balance-changes-{tag}",
        "LEDGERD_DLQ_TOPIC": f"balance-changes-dlq-{tag}",
        "LEDGERD_CONSUMER_GROUP": f"balance-consumer-group-{tag}",
        "LEDGERD_CACHE_KEY_PREFIX": f"ledgerd-test-{tag}:",
        "LEDGERD_CACHE_FEED_TOPIC": f"balance-updates-{tag}",
        "LEDGERD_CACHE_UPDATER_GROUP": f"ledgerd-cache-updater-{tag}",
        "LEDGERD_EVENTS_TOPIC": f"balance-events-{tag}",
    }
