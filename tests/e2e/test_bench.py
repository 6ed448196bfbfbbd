"""``ledgerd bench`` end to end, as a person runs it with its output going to a log file:
short runs of the change scenarios, checked for what they write, not for how fast they are."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import ledgerd_command

END_TO_END_FIELDS = {
    "accepted_rate", "end_to_end_rate", "consumer_lag_end", "unfinished_end", "drain_s",
}  # fmt: skip


def bench(tmp_path: Path, *args: str) -> tuple[Any, str]:
    """Run the bench with stdout and stderr piped (not a terminal); the JSON (a result, or
    a list of them) and stderr."""
    result = tmp_path / "result.json"
    finished = subprocess.run(
        ledgerd_command("bench", "--duration", "1", "--workdir", str(tmp_path / "work"),
                        "--idle-window", "0.5", "--warmup", "0.5", "--json", str(result), *args),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr + finished.stdout
    return json.loads(result.read_text()), finished.stderr


def cpu_per_op(result: dict[str, Any]) -> dict[str, float]:
    """The result's CPU-µs per operation by process, checked to cover its operations."""
    cpu = result["cpu"]
    assert cpu["operations"] > 0 and cpu["window_s"] > 0
    assert cpu["total_us"] == pytest.approx(sum(cpu["per_op_us"].values()), abs=0.1)
    per_op: dict[str, float] = cpu["per_op_us"]
    return per_op


@pytest.mark.parametrize("stack", ["embedded", "production"])
def test_change_batch_reports_end_to_end_figures_in_plain_lines(tmp_path: Path, stack: str) -> None:
    """The JSON keeps scenario and throughput, adds workers and the end-to-end figures of
    a settled, audited run, and CPU per change of each process that did work (on the
    production stack: the API and consumer processes, MariaDB and Kafka), as a multiple of
    the echo server's CPU per call measured in the same run; stderr holds whole lines, no
    carriage returns."""
    (echo, result), stderr = bench(tmp_path, "--scenario", "echo,change-batch", "--stack", stack)
    assert cpu_per_op(echo).keys() == {"echo server"} and echo["cpu"]["total_us"] > 0
    per_op = cpu_per_op(result)
    if stack == "production":
        assert per_op.keys() == {
            "ledgerd api+relay+cache", "ledgerd consumer+cache", "mariadb", "kafka", "redis",
        }  # fmt: skip
        assert all(per_op[name] > 0 for name in per_op if name != "redis")
    else:
        assert per_op.keys() == {"ledgerd"} and per_op["ledgerd"] > 0
    assert result["cpu"]["x_echo"] == pytest.approx(
        result["cpu"]["total_us"] / echo["cpu"]["total_us"], rel=0.01
    )
    assert result["scenario"] == "change-batch"
    assert isinstance(result["throughput"], float) and result["throughput"] > 0
    assert result["workers"] == 1
    assert result.keys() >= END_TO_END_FIELDS
    assert result["accepted_rate"] == result["throughput"]
    assert isinstance(result["end_to_end_rate"], float) and result["end_to_end_rate"] > 0
    assert result["settled"] is True and result["audit"]["ok"]  # type: ignore[index]
    assert "\r" not in stderr
    assert any(line.startswith("  change-batch: ") for line in stderr.splitlines())


def test_change_single_rows_carry_the_workers_asked_for(tmp_path: Path) -> None:
    """--workers 1 runs change-single once; its row says 1 worker and one API process."""
    result, stderr = bench(
        tmp_path, "--scenario", "change-single", "--stack", "embedded", "--workers", "1"
    )
    assert (result["scenario"], result["workers"], result["api_processes"]) == (
        "change-single",
        1,
        1,
    )
    assert result.keys() >= END_TO_END_FIELDS
    assert "== change-single (1 worker)" in stderr


def test_apply_on_two_shards_with_two_consumers_drains_and_audits(tmp_path: Path) -> None:
    """--shards 2 --consumers 2: the preloaded log is applied by two consumer processes
    into two database shards, every change once (the audit of both shards passes)."""
    result, _ = bench(
        # Enough changes that most are left when both consumers serve: each applies from its
        # own start, and the measurement opens when the slower one serves.
        tmp_path, "--scenario", "apply", "--apply-changes", "30000", "--batch", "1000",
        "--shards", "2", "--consumers", "2", "--partitions", "4",
    )  # fmt: skip
    parameters = result["parameters"]
    assert isinstance(parameters, dict)
    assert (parameters["shards"], parameters["consumers"], parameters["partitions"]) == (2, 2, 4)
    assert result["ok"] is True
    per_op = cpu_per_op(result)  # both consumers under one name, the backends beside them
    assert per_op["ledgerd consumer+cache"] > 0 and per_op["mariadb"] > 0
    audit = result["audit"]  # (a run this short may end before the first rate sample)
    assert isinstance(audit, dict)
    assert audit["ok"] and audit["in_flight"] == 0 and audit["journal_entries"] > 0


def test_transfer_reports_both_rates_of_a_settled_audited_run(tmp_path: Path) -> None:
    """`--scenario transfer`: transfers/s accepted and end to end, every transfer settled,
    the audit clean and the sampled transfers APPLIED."""
    result, stderr = bench(
        tmp_path, "--scenario", "transfer", "--stack", "embedded", "--accounts", "200",
        "--concurrency", "8",
    )  # fmt: skip
    assert (result["scenario"], result["unit"]) == ("transfer", "transfers/s")
    assert result.keys() >= END_TO_END_FIELDS
    assert isinstance(result["end_to_end_rate"], float) and result["end_to_end_rate"] > 0
    assert result["settled"] is True and result["audit"]["ok"]  # type: ignore[index]
    applied, sampled = str(result["sampled_applied"]).split("/")
    assert applied == sampled and int(sampled) > 0
    assert any(line.startswith("  transfer: ") for line in stderr.splitlines())


def test_apply_large_applies_on_a_prefilled_journal_and_audits(tmp_path: Path) -> None:
    """apply-large with a tiny --journal-rows: the journal holds the prefilled history plus
    every change applied, the audit accepts the whole, and the consumer's CPU per change
    is measured."""
    result, stderr = bench(
        tmp_path, "--scenario", "apply-large", "--journal-rows", "3000", "--accounts", "500",
        "--apply-changes", "2000", "--batch", "500",
    )  # fmt: skip
    assert result["scenario"] == "apply-large" and result["ok"] is True
    assert result["parameters"]["journal_rows"] == 3000
    audit = result["audit"]
    assert audit["ok"] and audit["in_flight"] == 0
    applied = audit["journal_entries"] - 3000
    assert 0 < applied <= 2000  # the rest rejected (insufficient funds)
    assert cpu_per_op(result)["ledgerd consumer+cache"] > 0
    assert "journal prefill" in stderr


def test_hold_settles_every_hold_and_reports_cpu_per_change(tmp_path: Path) -> None:
    """`--scenario hold`: holds captured at once or left to expire; every expiry applied
    (settled), the audit clean, CPU per change over the client changes and the expiries."""
    result, _ = bench(
        tmp_path, "--scenario", "hold", "--stack", "embedded", "--accounts", "200",
        "--concurrency", "4",
    )  # fmt: skip
    assert (result["scenario"], result["unit"]) == ("hold", "changes/s")
    assert result["settled"] is True and result["audit"]["ok"]  # type: ignore[index]
    assert result["client_changes"] > 0 and result["expired_holds"] > 0
    assert result["cpu"]["operations"] == result["client_changes"] + result["expired_holds"]
    assert cpu_per_op(result)
