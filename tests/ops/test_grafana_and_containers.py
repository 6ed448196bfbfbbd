"""deploy/grafana and the container files agree with what ledgerd really exposes."""

from __future__ import annotations

import json
import re
import tomllib
import urllib.request

import yaml
from harness import ServerProcess
from ops_support import REPO, metric_names

from ledgerd.settings import ENV_PREFIX, Settings

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "ledgerd.json"
COMPOSE = REPO / "deploy" / "compose.yaml"


def test_every_metric_in_the_dashboard_exists_in_a_live_scrape(busy_server: ServerProcess) -> None:
    """Each metric named in a panel query appears on a running ledgerd's /metrics."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    wanted = set().union(*(metric_names(t["expr"]) for p in panels for t in p["targets"]))
    url = f"http://127.0.0.1:{busy_server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        scraped = metric_names(answer.read().decode())
    assert wanted, "the dashboard queries no ledgerd metric"
    assert wanted <= scraped, f"not exposed: {sorted(wanted - scraped)}"


def test_dashboard_has_the_required_panels() -> None:
    """Throughput, latency, lag, outbox, rejections, cache hit ratio, leader and supervised
    components are all shown."""
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    required = ("per second", "latency", "lag", "outbox", "rejected", "cache hit", "leader")
    for word in (*required, "components up", "component crashes"):
        assert word in titles, word


def settings_variables() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def test_every_ledgerd_variable_in_compose_is_a_setting() -> None:
    """The compose file sets only LEDGERD_* variables that ledgerd knows."""
    compose = yaml.safe_load(COMPOSE.read_text())
    used: set[str] = set()
    for service in compose["services"].values():
        used |= {k for k in (service.get("environment") or {}) if k.startswith(ENV_PREFIX)}
    assert used, "compose sets no LEDGERD_* variable"
    assert used <= settings_variables(), sorted(used - settings_variables())


def test_image_entry_point_is_the_ledgerd_command() -> None:
    """The Dockerfile runs `ledgerd` (the console script) and sets only known variables."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["ledgerd"\]$', dockerfile, re.MULTILINE)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ledgerd"] == "ledgerd.cli:main"
    assert set(re.findall(r"\b(LEDGERD_[A-Z_]+)=", dockerfile)) <= settings_variables()
