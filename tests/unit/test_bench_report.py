"""The bench's result files and report: the JSON forms, workers, end-to-end figures, targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledgerd.bench.report import markdown, ratios, table, write_json

MACHINE = {
    "cpus": 2, "cpu_model": "Xeon", "load_1m": 3.5, "memory_gb": 23.5, "python": "3.11.7",
    "platform": "Linux",
}  # fmt: skip


def row(scenario: str, throughput: float, workers: int | None = 1, **extra: Any) -> Any:
    return {
        "scenario": scenario, "workers": workers, "throughput": throughput,
        "unit": "calls/s", "p50_ms": 1.0, "p99_ms": 2.0, "p100_ms": 3.0, "errors": {},
        "audit": None, "parameters": {"duration_s": 10.0}, "machine": MACHINE, **extra,
    }  # fmt: skip


BATCH_FIGURES = {
    "accepted_rate": 60_000.0, "end_to_end_rate": 40_000.0, "consumer_lag_end": 1234,
    "unfinished_end": 2000, "drain_s": 1.5, "settled": True, "api_processes": 1,
}  # fmt: skip
RUN = [
    row("echo", 1000.0),
    row("change-single", 850.0, workers=1, api_processes=1),
    row("change-single", 1500.0, workers=2, api_processes=3),
    row("read", 850.0, workers=1, api_processes=1),
    row("change-batch", 60_000.0, **BATCH_FIGURES),
]


def test_one_result_is_written_as_an_object_several_as_a_list(tmp_path: Path) -> None:
    """The single-scenario form stays an object; a run of several rows is one list."""
    write_json(tmp_path / "one.json", RUN[:1])
    write_json(tmp_path / "all.json", RUN)
    assert json.loads((tmp_path / "one.json").read_text()) == RUN[0]
    assert json.loads((tmp_path / "all.json").read_text()) == RUN


def test_targets_use_the_echo_of_the_same_run_per_worker_count() -> None:
    """change-single is judged per worker count against this run's echo; read at 0.9x;
    change-batch by its end-to-end rate, not the accepted one."""
    found = {target: (measured, verdict) for target, measured, verdict in ratios(RUN)}
    assert found["change-single (1 worker) >= 0.8 x echo"] == ("0.85x", "met")
    assert found["change-single (2 workers) >= 0.8 x echo"] == ("1.50x", "met")
    assert found["read (1 worker) >= 0.9 x echo"] == ("0.85x", "not met")
    assert found["change-batch end to end >= 50,000 changes/s"] == (
        "40,000 changes/s",
        "not met",
    )


def test_the_table_shows_workers_and_the_pipeline_figures() -> None:
    """Rows are named by workers; a second table lists the change scenarios' figures."""
    text = table(RUN)
    assert "change-single (2 workers)" in text
    pipeline = text.split("\n\n")[1]
    assert "end_to_end_rate" in pipeline
    assert "40,000" in pipeline and "1,234" in pipeline


def test_a_server_that_ignored_the_workers_setting_is_flagged() -> None:
    """Two workers asked for but one process seen: the table and the report say so."""
    ignored = [row("read", 850.0, workers=2, api_processes=1)]
    assert "2 (1 seen)" in table(ignored)
    assert "but the server ran one process" in markdown(ignored, "ledgerd bench")
    assert "1 seen" not in markdown(RUN, "ledgerd bench")


def test_markdown_shows_machine_commands_ratios_and_end_to_end() -> None:
    """The report names the machine (and its load), the commands, gives x echo, and the
    end-to-end table."""
    text = markdown(RUN, "ledgerd bench --scenario all")
    assert "2 CPUs (Xeon), 23.5 GB" in text and "Load average (1 min)" in text
    assert "`ledgerd bench --scenario all`" in text and "--compare" in text
    assert "| change-single (2 workers) | 2 | 1,500 | calls/s | 1.50 |" in text
    assert "## End to end" in text
    assert "| change-batch | 60,000 | 40,000 | 1,234 | 2,000 | 1.5 |" in text
