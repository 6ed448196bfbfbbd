"""Which process shows what: in a split deployment every process serves the page, the
store's and the log's panels agree, and what is a process's own (partitions owned here,
leader locks, the audit) shows on the process that has it."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Deployment, ServerProcess, wait_until

from ledgerd.client import LedgerdClient


@pytest.fixture(scope="module")
def split(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """An API-only process and a worker (relay, consumer, cache updater) beside it."""
    deployment = Deployment(Path(tmp_path_factory.mktemp("page-split")), audit_interval_s="1")
    try:
        worker = deployment.start("worker", api=False)
        api = deployment.start("api", relay=False, consumer=False, cache_updater=False)
        yield api, worker
    finally:
        for process in deployment.processes:
            process.stop()


def _overview(server: ServerProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.metrics_port}/console/api/overview"
    with urllib.request.urlopen(url, timeout=10) as answer:
        overview: dict[str, Any] = json.loads(answer.read())
        return overview


def _committed(overview: dict[str, Any]) -> int:
    return sum(row["committed_offset"] for row in overview["partitions"]["rows"])


def test_every_process_serves_the_page_and_shows_its_own_part(
    split: tuple[ServerProcess, ServerProcess],
) -> None:
    api, worker = split
    with LedgerdClient(api.target) as client:
        client.change("DEPOSIT", uuid.uuid4().int % 10**9 + 1, "USD", "1", wait=True)
    # Both see the change applied: the offsets come from the shared store.
    wait_until(lambda: _committed(_overview(api)) >= 1, 10.0, "the API process sees it")
    wait_until(lambda: _committed(_overview(worker)) >= 1, 10.0, "the worker sees it")

    on_api, on_worker = _overview(api), _overview(worker)
    assert on_api["process"]["roles"] == ["api"]
    assert on_worker["process"]["roles"] == ["relay", "consumer", "cache_updater"]
    assert {row["owner"] for row in on_api["partitions"]["rows"]} == {"a consumer process"}
    assert all(row["owned_here"] for row in on_worker["partitions"]["rows"])
    # Leader locks come from the store: the API process names the worker as the holder.
    assert {lock["name"] for lock in on_worker["leader_locks"] if lock["held_here"]} >= {"outbox"}
    outbox_on_api = next(lock for lock in on_api["leader_locks"] if lock["name"] == "outbox")
    assert not outbox_on_api["held_here"]
    assert f":{worker.process.pid}:" in outbox_on_api["holder"]
    assert on_api["audit"] == {"ran": False}
    wait_until(lambda: _overview(worker)["audit"].get("ok"), 10.0, "the worker's audit")
