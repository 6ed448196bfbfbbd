"""Security tests run against real servers on the embedded stack, with keys configured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ServerProcess
from security_support import KEYS


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that requires signatures (keys inline in LEDGERD_HMAC_KEYS)."""
    process = ServerProcess(
        tmp_path_factory.mktemp("signed"), {"LEDGERD_HMAC_KEYS": json.dumps(KEYS)}
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without keys (signing off), for hostile-input tests."""
    process = ServerProcess(tmp_path_factory.mktemp("open"), {"LEDGERD_MAX_CONCURRENT_RPCS": "64"})
    process.start()
    yield process
    process.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
