"""Integration tests: ledgerd processes on the real MariaDB, Kafka and Redis of scripts/services."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerd.testing import ServerProcess, production_env

REPO = Path(__file__).resolve().parents[2]


def services(*args: str) -> None:
    """Run scripts/services (e.g. stop or start one service)."""
    subprocess.run([str(REPO / "scripts" / "services"), *args], check=True, timeout=300)


class Cluster:
    """Several ledgerd processes sharing one production deployment (database, topics, group)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = production_env()
        self.processes: list[ServerProcess] = []

    def start(self, name: str, **roles: bool) -> ServerProcess:
        env = {**self.env}
        for role, on in roles.items():
            env[f"LEDGERD_START_{role.upper()}"] = "true" if on else "false"
        process = ServerProcess(self.root / name, env)
        self.processes.append(process)
        return process.start(timeout_s=60)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    yield made
    for process in made.processes:
        process.kill()
