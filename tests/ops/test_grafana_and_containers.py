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


def label_names(expr: str) -> set[str]:
    """The label names an expression matches on or aggregates by."""
    matched = {
        name
        for body in re.findall(r"\{([^}]*)\}", expr)
        for name in re.findall(r"(\w+)\s*!?=~?", body)
    }
    grouped = {
        name.strip()
        for names in re.findall(r"\bby\s*\(([^)]*)\)", expr)
        for name in names.split(",")
    }
    return (matched | grouped) - {""}


def test_rpc_queries_use_labels_the_rpc_metrics_have(busy_server: ServerProcess) -> None:
    """Every label a dashboard panel or alert rule uses on ledgerd_rpc_* exists on the live
    series (the grpc-ecosystem names, not the old method/code)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = set().union(*(label_names(e) for e in exprs if "ledgerd_rpc_" in e))
    url = f"http://127.0.0.1:{busy_server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    exposed = {
        name
        for line in text.splitlines()
        if line.startswith("ledgerd_rpc_")
        for name in re.findall(r'(\w+)="', line)
    }
    assert used, "no panel or rule queries the RPC metrics"
    assert used <= exposed, f"not on the RPC series: {sorted(used - exposed)}"
