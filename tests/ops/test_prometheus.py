"""deploy/prometheus: the rules are valid, and a real Prometheus scraping ledgerd finds
every metric they use."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import yaml
from harness import ServerProcess, free_port, wait_for, wait_until
from ops_support import REPO, metric_names

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"


def rule_metrics() -> set[str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return set().union(*(metric_names(rule["expr"]) for rule in rules))


def test_promtool_accepts_the_alert_rules() -> None:
    """`promtool check rules` passes on deploy/prometheus/alerts.yml."""
    done = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_cover_the_required_signals() -> None:
    """Lag, outbox age, gRPC errors, DLQ, leader, paused partitions, audit and supervised
    components each have a rule."""
    assert {
        "ledgerd_consumer_lag_messages",
        "ledgerd_outbox_oldest_unsent_age_seconds",
        "ledgerd_rpc_requests_total",
        "ledgerd_dlq_messages_total",
        "ledgerd_leader",
        "ledgerd_consumer_paused_partitions",
        "ledgerd_audit_problems",
        "ledgerd_component_up",
        "ledgerd_component_failures_total",
    } <= rule_metrics()


def query(port: int, expr: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as answer:
        result: list[dict[str, object]] = json.loads(answer.read())["data"]["result"]
        return result


def test_prometheus_scrapes_every_metric_the_rules_use(
    busy_server: ServerProcess, tmp_path: Path
) -> None:
    """A real Prometheus scraping ledgerd answers a query for each metric in the rules."""
    port = free_port()
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": ["alerts.yml"],
                "scrape_configs": [
                    {
                        "job_name": "ledgerd",
                        "static_configs": [{"targets": [f"127.0.0.1:{busy_server.metrics_port}"]}],
                    }
                ],
            }
        )
    )
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        missing = rule_metrics()

        def still_missing() -> list[str]:
            missing.difference_update({name for name in missing if query(port, name)})
            return sorted(missing)

        wait_for(
            still_missing,
            [],
            60,
            "samples in Prometheus for every rule metric",
            ignoring=(OSError,),  # Prometheus still starting
            interval_s=0.5,
        )

        def evaluated_rules() -> list[dict[str, object]]:
            url = f"http://127.0.0.1:{port}/api/v1/rules"
            with urllib.request.urlopen(url, timeout=5) as answer:
                groups = json.loads(answer.read())["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            # Health is "unknown" until the rule's first evaluation (every second).
            return rules if all(rule["health"] != "unknown" for rule in rules) else []

        rules = wait_until(evaluated_rules, 30, "a first evaluation of every alert rule")
        written = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
        assert len(rules) == len(written) and all(rule["health"] == "ok" for rule in rules), rules
    finally:
        prometheus.terminate()
        prometheus.wait()
