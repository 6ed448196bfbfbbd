"""The test harness: ``ledgerd serve`` processes, deployments of several of them on the
real services, MySQL databases made and dropped per test, and waiting for conditions.

Importable by every suite as ``harness`` (pyproject: ``pythonpath = ["tests"]``).
The process basics come from ledgerd.launch.serve_process, which ships with the package
and which the benchmark builds on too (the harness does not build on the benchmark);
what only tests may do (kill processes, drop databases, restart the shared services,
read a source checkout) lives here and does not ship.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.auditing import audit_json
from harness.templates import copy_of_template
from harness.waiting import wait_for, wait_until
from ledgerd.launch import serve_process
from ledgerd.launch.serve_process import (
    free_port,
    fresh_database_url,
    fresh_shard_urls,
    ledgerd_command,
    production_env,
    services,
)
from ledgerd.store.base import Store

__all__ = [
    "REPO_ROOT",
    "Deployment",
    "ServerProcess",
    "drop_database",
    "free_port",
    "fresh_database_url",
    "fresh_mysql_store",
    "fresh_shard_urls",
    "ledgerd_command",
    "migrated_database_url",
    "migrated_shard_urls",
    "production_env",
    "run_services",
    "services",
    "wait_for",
    "wait_until",
]


class ServerProcess(serve_process.ServerProcess):
    """A ``ledgerd serve`` child process, plus what tests do to it: kill it, run CLI
    commands against its store, audit it, and read the events it logged."""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

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
        """The ``ledgerd audit --json`` report of this server's store, computed in this
        process (harness.auditing: the CLI costs seconds of imports per call)."""
        return audit_json(self.env)

    def audit_cli(self) -> dict[str, Any]:
        """The report as ``ledgerd audit --json`` prints it, for tests of the CLI."""
        completed = self.run_cli("audit", "--json")
        report: dict[str, Any] = json.loads(completed.stdout)
        return report

    def wait_settled(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until no request is in flight; returns the audit report (the last one
        read if the deadline passes: callers assert on it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.audit()
            if report["in_flight"] == 0 or time.monotonic() > deadline:
                return report
            time.sleep(0.2)

    def log_events(self, *events: str) -> list[dict[str, Any]]:
        """The JSON log lines of every run of this server (its log is appended to across
        restarts) whose event is one of ``events``, oldest first."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            if not any(event in line for event in events):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written, or a traceback
            if isinstance(record, dict) and record.get("event") in events:
                found.append(record)
        return found

    def applied(self) -> float:
        """Changes this run of the server's consumer applied (0 while /metrics is down)."""
        try:
            return self.metric('ledgerd_changes_total{outcome="applied"}')
        except OSError:
            return 0.0

    def wait_applied(self, more: int, timeout_s: float = 60.0) -> None:
        """Until this run of the server's consumer has applied ``more`` changes beyond now."""
        target = self.applied() + more
        wait_until(
            lambda: self.applied() >= target,
            timeout_s,
            f"{more} more changes applied by {self.data_dir.name}",
        )

    def owned_partitions(self) -> set[int]:
        """The partitions this server's consumer owns now, replayed from its log:
        assignments add, revocations and fenced batches remove (a fenced partition is
        dropped until assigned again). For a server that has not been restarted."""
        owned: set[int] = set()
        for record in self.log_events(*_OWNERSHIP_EVENTS):
            partitions = set(record.get("partitions", []))
            if record["event"] == "partitions assigned":
                owned |= partitions
            else:
                owned -= partitions
        return owned


# What ledgerd.consumer.worker logs when its partitions change hands.
_OWNERSHIP_EVENTS = ("partitions assigned", "partitions revoked", "batch fenced")


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


def migrated_database_url() -> str:
    """A MySQL URL naming a new database at the latest schema (a copy of a template
    migrated once per test process: harness.templates), without a message key yet."""
    url = fresh_database_url()
    server_url, database = url.rsplit("/", 1)
    return copy_of_template(server_url, database)


def migrated_shard_urls(count: int) -> list[str]:
    """``fresh_shard_urls`` whose databases exist at the latest schema, like
    ``migrated_database_url``."""
    return [copy_of_template(*url.rsplit("/", 1)) for url in fresh_shard_urls(count)]


@contextmanager
def fresh_mysql_store() -> Iterator[Store]:
    """A migrated MySQL store on a new database, dropped afterwards."""
    from ledgerd.store.mysql import MysqlStore

    url = migrated_database_url()
    store = MysqlStore(url)
    try:
        store.migrate()  # nothing to apply: draws the store's message key
        yield store
    finally:
        store.close()
        drop_database(url)


REPO_ROOT = Path(__file__).resolve().parents[2]


def run_services(*args: str) -> None:
    """Run scripts/services, e.g. ``run_services("down", "redis")``.

    LEDGERD_TEST_SERVICES names another checkout's script: scripts/services keeps the
    Kafka broker's pid under its own checkout, so a worktree must use the script of the
    checkout that started the shared services, or it would not stop the real broker.
    """
    script = os.environ.get("LEDGERD_TEST_SERVICES") or str(REPO_ROOT / "scripts" / "services")
    subprocess.run([script, *args], check=True, timeout=300)


class Deployment:
    """Several ledgerd processes sharing one production deployment: database, topics, group."""

    def __init__(self, root: Path, *, shards: int = 1, **settings: str) -> None:
        """``shards`` > 1: that many database shards, on both MariaDB servers."""
        self.root = root
        self.env = {
            **production_env(shards=shards),
            **{f"LEDGERD_{k.upper()}": v for k, v in settings.items()},
        }
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
