"""The operator's page's HTTP side, without a browser and on one stack (it does not
depend on the backends): its files, its headers, and its JSON endpoints' refusals."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from harness import ServerProcess

from ledgerd.client import LedgerdClient


@pytest.fixture(scope="module")
def stack() -> str:
    return "embedded"


def _get(server: ServerProcess, path: str) -> tuple[int, dict[str, str], bytes]:
    url = f"http://127.0.0.1:{server.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _json(server: ServerProcess, path: str) -> tuple[int, Any]:
    status, _, body = _get(server, path)
    return status, json.loads(body)


def test_page_and_its_files_come_from_the_process_with_a_strict_policy(
    server: ServerProcess,
) -> None:
    """``/`` and its CSS and JS are served by the process itself; only same-origin files
    may run, nothing inline, and no other site may frame the page."""
    status, headers, body = _get(server, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'<script src="/console/console.js"' in body
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        status, headers, _ = _get(server, f"/console/{name}")
        assert (status, headers["Content-Type"].split(";")[0]) == (200, kind)
    assert _get(server, "/console/..%2Fviews.py")[0] == 404
    assert _get(server, "/console/views.py")[0] == 404


def test_lookups_refuse_malformed_fields_with_400_and_unknown_ids_with_404(
    server: ServerProcess,
) -> None:
    for path, field in (
        ("/console/api/account", "user_id"),
        ("/console/api/account?user_id=-1", "user_id"),
        ("/console/api/account?user_id=7&currency=us%24", "currency"),
        ("/console/api/request?request_id=a%20b", "request_id"),
        ("/console/api/transfer", "transfer_id"),
    ):
        status, answer = _json(server, path)
        assert status == 400, path
        assert answer["error"].startswith(field + ":"), path
    missing = uuid.uuid4().hex
    assert _json(server, f"/console/api/request?request_id={missing}") == (
        404,
        {"error": "not found"},
    )
    assert _json(server, f"/console/api/transfer?transfer_id={missing}")[0] == 404


def test_account_lookup_lists_at_most_twenty_journal_entries(
    server: ServerProcess,
) -> None:
    """A busy account costs the page one bounded read: the newest 20 entries."""
    user = uuid.uuid4().int % 10**12 + 1
    with LedgerdClient(server.target) as client:
        for n in range(25):
            client.change("DEPOSIT", user, "USD", "1", request_id=f"bound-{user}-{n}", wait=True)
    status, answer = _json(server, f"/console/api/account?user_id={user}&currency=USD")
    assert status == 200
    versions = [entry["version"] for entry in answer["journal"]]
    assert versions == list(range(25, 5, -1))


def test_overview_is_shared_by_viewers_within_a_second(server: ServerProcess) -> None:
    """Pages polling together cost one gathering: answers within a second are one."""
    first = _json(server, "/console/api/overview")[1]
    second = _json(server, "/console/api/overview")[1]
    assert first["process"]["now_ms"] == second["process"]["now_ms"]


def test_console_off_leaves_only_the_probes_and_metrics(tmp_path: Path) -> None:
    """LEDGERD_CONSOLE=false: the page and its endpoints are 404; the probes answer."""
    server = ServerProcess(tmp_path / "no-page", {"LEDGERD_CONSOLE": "false"}).start()
    try:
        for path in ("/", "/console/console.js", "/console/api/overview"):
            assert _get(server, path)[0] == 404, path
        for path in ("/metrics", "/healthz", "/readyz"):
            assert _get(server, path)[0] == 200, path
    finally:
        server.stop()
