"""The operator's page in a real headless Chromium (cdp.py), against one started server
per stack, shared by the module's tests (they isolate by new users and request ids).

``embedded``: SQLite, embedded log, memory cache. ``production``: MariaDB, Kafka and
Redis from scripts/services, every role in the one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Browser
from harness import ServerProcess, production_env

from ledgerd.client import LedgerdClient

STACKS = ["embedded", "production"]

# The periodic audit every second, so that the audit panel has a result to show.
PAGE_SETTINGS = {"LEDGERD_AUDIT_INTERVAL_S": "1"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    started = Browser()
    yield started
    started.close()


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = production_env() if stack == "production" else {}
    data_dir: Path = tmp_path_factory.mktemp(f"page-{stack}")
    process = ServerProcess(data_dir, {**env, **PAGE_SETTINGS}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[LedgerdClient]:
    with LedgerdClient(server.target) as opened:
        yield opened


@pytest.fixture(scope="module")
def page_url(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.metrics_port}/"
