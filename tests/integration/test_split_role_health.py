"""Every process answers health whatever its roles, and a split-role process whose component
stays down exits non-zero for its orchestrator."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from harness import Deployment, ServerProcess, wait_until

NO_ROLES = {"api": False, "relay": False, "consumer": False, "cache_updater": False}


def probe(process: ServerProcess, path: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a GET on the process's operations port."""
    url = f"http://127.0.0.1:{process.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        is_json = error.headers.get_content_type() == "application/json"
        return error.code, json.loads(error.read()) if is_json else {}


def test_role_only_processes_answer_liveness_and_readiness(cluster: Deployment) -> None:
    """Relay-, consumer- and cache-updater-only processes serve /healthz and /readyz with
    their components."""
    expected = {
        "relay": "component:relay",
        "consumer": "component:consumer",
        "cache_updater": "component:cache_updater.feed",
    }
    for role, component in expected.items():
        process = cluster.start(role, **{**NO_ROLES, role: True})
        for path in ("/healthz", "/readyz"):
            status, body = probe(process, path)
            assert status == 200, (role, path, body)
            assert body["status"] == "SERVING"
            assert body["components"][component].startswith("ok"), body
        status, _ = probe(process, "/nowhere")
        assert status == 404


def test_a_split_role_process_with_a_component_down_exits_1(cluster: Deployment) -> None:
    """A relay-only process whose relay crashes every round is reported down and exits 1."""
    process = cluster.start(
        "relay",
        {"failpoints": "relay.loop=error", "component_max_restarts": "2"},
        **{**NO_ROLES, "relay": True},
    )
    child = process.process
    assert child is not None
    wait_until(lambda: child.poll() is not None, 60, "the relay-only process exiting")
    assert child.returncode == 1
    log = process.log_tail(200)
    assert '"component down"' in log and '"component": "relay"' in log


def test_ledgerd_health_probe_reaches_a_consumer_only_process(cluster: Deployment) -> None:
    """`ledgerd health --probe` shows a process without the API: its components, exit 0."""
    process = cluster.start("consumer", **{**NO_ROLES, "consumer": True})
    completed = process.run_cli("health", "--probe")  # the process's own LEDGERD_METRICS_ADDR
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["status"] == "SERVING"
    assert report["components"]["consumer"].startswith("ok, partitions")
