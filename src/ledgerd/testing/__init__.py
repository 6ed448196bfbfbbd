"""Helpers for tests and benchmarks that drive a real ``ledgerd serve`` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledgerd.store.base import Store


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
        # from `eval "$(scripts/services env)"`) must not leak into a test's server.
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

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ledgerd_command("serve"), env=self.env, stdout=log, stderr=log
        )
        log.close()
        self.wait_serving(timeout_s)
        return self

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

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

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

    def run_cli(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a ``ledgerd`` command with this server's settings (plus ``env``)."""
        return subprocess.run(
            ledgerd_command(*args),
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )

    def audit(self) -> dict[str, Any]:
        """The ``ledgerd audit --json`` report of this server's store."""
        completed = self.run_cli("audit", "--json")
        report: dict[str, Any] = json.loads(completed.stdout)
        return report

    def wait_settled(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until no request is in flight; returns the audit report."""
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.audit()
            if report["in_flight"] == 0 or time.monotonic() > deadline:
                return report
            time.sleep(0.2)


class services:
    """Where the real MariaDB, Kafka and Redis of scripts/services listen."""

    @staticmethod
    def mysql_server_url() -> str:
        return os.environ.get("LEDGERD_TEST_MYSQL_URL", "mysql://ledgerd:ledgerd@127.0.0.1:3306")

    @staticmethod
    def kafka_bootstrap() -> str:
        return os.environ.get("LEDGERD_TEST_KAFKA", "127.0.0.1:9092")

    @staticmethod
    def redis_url(db: int = 0) -> str:
        return os.environ.get("LEDGERD_TEST_REDIS_URL", "redis://127.0.0.1:6379") + f"/{db}"


def production_env(store_url: str | None = None) -> dict[str, str]:
    """Settings for a server on MariaDB + Kafka + Redis, isolated from every other one:
    its own database, topics, consumer group and cache key prefix."""
    tag = uuid.uuid4().hex[:10]
    return {
        "LEDGERD_STORE_URL": store_url or fresh_database_url(),
        "LEDGERD_LOG_URL": f"kafka://{services.kafka_bootstrap()}",
        "LEDGERD_CACHE_URL": services.redis_url(),
        "LEDGERD_TOPIC": f"balance-changes-{tag}",
        "LEDGERD_DLQ_TOPIC": f"balance-changes-dlq-{tag}",
        "LEDGERD_CONSUMER_GROUP": f"balance-consumer-group-{tag}",
        "LEDGERD_CACHE_KEY_PREFIX": f"ledgerd-test-{tag}:",
        "LEDGERD_CACHE_FEED_TOPIC": f"balance-updates-{tag}",
        "LEDGERD_CACHE_UPDATER_GROUP": f"ledgerd-cache-updater-{tag}",
    }


def fresh_database_url() -> str:
    """A MySQL URL naming a database no one has used (created by ``migrate``)."""
    return f"{services.mysql_server_url()}/ledgerd_t_{uuid.uuid4().hex[:12]}"


def drop_database(url: str) -> None:
    import MySQLdb

    from ledgerd.store.mysql import MysqlUrl

    parsed = MysqlUrl.parse(url)
    connection = MySQLdb.connect(
        host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password
    )
    try:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{parsed.database}`")
    finally:
        connection.close()


@contextmanager
def fresh_mysql_store() -> Iterator[Store]:
    """A migrated MySQL store on a new database, dropped afterwards."""
    from ledgerd.store.mysql import MysqlStore

    url = fresh_database_url()
    store = MysqlStore(url)
    try:
        store.migrate()
        yield store
    finally:
        store.close()
        drop_database(url)


REPO_ROOT = Path(__file__).resolve().parents[3]


def run_services(*args: str) -> None:
    """Run scripts/services, e.g. ``run_services("down", "redis")``."""
    subprocess.run([str(REPO_ROOT / "scripts" / "services"), *args], check=True, timeout=300)


class Deployment:
    """Several ledgerd processes sharing one production deployment: database, topics, group."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.env = {**production_env(), **{f"LEDGERD_{k.upper()}": v for k, v in settings.items()}}
        self.processes: list[ServerProcess] = []

    def start(
        self, name: str, settings: Mapping[str, str] | None = None, **roles: bool
    ) -> ServerProcess:
        """Start a process with the given roles on (``api=False`` turns the API off)."""
        env = {**self.env, **{f"LEDGERD_{k.upper()}": v for k, v in (settings or {}).items()}}
        for role, on in roles.items():
            env[f"LEDGERD_START_{role.upper()}"] = "true" if on else "false"
        process = ServerProcess(self.root / name, env)
        self.processes.append(process)
        return process.start(timeout_s=60)

    def kill_all(self) -> None:
        for process in self.processes:
            if process.process is not None:
                if process.process.poll() is None:
                    os.kill(process.process.pid, signal.SIGCONT)  # in case a test paused it
                process.kill()
