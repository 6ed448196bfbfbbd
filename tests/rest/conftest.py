"""The REST/JSON gateway of a real server (embedded stack), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from harness import ServerProcess, free_port

KEYS = {
    "writer": {"secrets": ["rest-secret"], "scopes": ["read", "write"]},
    "reader": {"secrets": ["rest-read"], "scopes": ["read"]},
    "ops": {"secrets": ["rest-ops"], "scopes": ["read", "admin"]},
}


def start(tmp_path_factory: pytest.TempPathFactory, **env: str) -> tuple[ServerProcess, str]:
    port = free_port()
    server = ServerProcess(
        tmp_path_factory.mktemp("rest"), {"LEDGERD_HTTP_ADDR": f"127.0.0.1:{port}", **env}
    ).start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, base = start(tmp_path_factory)
    yield base
    server.stop()


@pytest.fixture(scope="module")
def signed_rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, base = start(tmp_path_factory, LEDGERD_HMAC_KEYS=json.dumps(KEYS))
    yield base
    server.stop()


@pytest.fixture(scope="module")
def one_call_rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway that allows one call in progress."""
    server, base = start(tmp_path_factory, LEDGERD_MAX_CONCURRENT_RPCS="1")
    yield base
    server.stop()
