"""Integration tests: ledgerd processes on the real MariaDB, Kafka and Redis of scripts/services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Deployment


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Deployment]:
    made = Deployment(tmp_path)
    yield made
    made.kill_all()
