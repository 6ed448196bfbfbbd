"""Fault injection on the real stack: every scenario drives a load, injects a fault,
recovers, and then proves nothing acknowledged was lost or applied twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Deployment
from reliability_support import deployment_of

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every scenario here is slow (`make test-slow`): each restarts a shared service or
    kills processes through a load that runs tens of seconds by design. (A conftest's
    hook sees the whole session's items, hence the path test.)"""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    yield from _deployment(tmp_path, shards=1)


@pytest.fixture(params=[1, 2], ids=["one-database", "two-shards"])
def deployment_on_shards(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """The deployment on one database, and on two shards (one on each MariaDB server)."""
    yield from _deployment(tmp_path, shards=int(request.param))


def _deployment(tmp_path: Path, shards: int) -> Iterator[Deployment]:
    with deployment_of(tmp_path, shards=shards) as made:
        yield made
