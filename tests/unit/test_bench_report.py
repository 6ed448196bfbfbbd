"""The bench's result files and report: the JSON forms, workers, end-to-end figures, targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledgerd.bench.report import annotate, markdown, ratios, table, write_json

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


def cpu(total: float, **per_op: float) -> dict[str, Any]:
    return {"per_op_us": per_op or {"ledgerd": total}, "total_us": total, "operations": 1000}


# Three runs of echo, apply and change-single (1 worker), each with its CPU figures.
CPU_RUNS = [
    row(scenario, 1.0, run=run, cpu=cpu(total, **per_op),
        unit="calls/s" if scenario == "echo" else "changes/s")
    for run, echo_us, apply_us, single_us in ((1, 300.0, 60.0, 600.0), (2, 250.0, 40.0, 400.0),
                                             (3, 280.0, 42.0, 700.0))
    for scenario, total, per_op in (
        ("echo", echo_us, {"echo server": echo_us}),
        ("apply", apply_us, {"ledgerd consumer+cache": apply_us * 0.75,
                             "mariadb": apply_us * 0.25}),
        ("change-single", single_us, {"ledgerd api+relay+cache": single_us / 2,
                                      "mariadb": single_us / 2}),
    )
]  # fmt: skip


def test_cpu_targets_use_the_echo_of_the_same_run_and_the_median_of_the_runs() -> None:
    """apply: median 42 µs (40-60) and 0.16x echo of its own run (0.2, 0.16, 0.15):
    within <= 45 µs and <= 0.17x; change-single 2.0x, 1.6x, 2.5x echo: median 2.0x, over
    its 1.7x budget."""
    found = {target: (measured, verdict) for target, measured, verdict in ratios(CPU_RUNS)}
    apply = "apply (consumer drains a preloaded log), per change <= 45 µs and <= 0.17x echo"
    assert found[apply] == ("42 µs (40-60), 0.16x echo (0.15-0.20)", "met")
    single = (
        "ChangeBalance wait=false, until applied, per change [change-single (1 worker)]"
        " <= 1.7x echo"
    )
    assert found[single] == ("600 µs (400-700), 2.00x echo (1.60-2.50)", "not met")


def test_rates_are_no_longer_targets() -> None:
    """Issue 22 replaced the rate targets: rows without CPU figures give no target."""
    assert ratios(RUN) == []


def test_apply_large_is_judged_against_the_empty_journal_apply_of_its_run() -> None:
    """apply-large's CPU per change over apply's in the same run (60, 40, 42 µs): 66, 52
    and 50 µs make 1.10x, 1.30x and 1.19x; their median, 1.19x, is within 1.25x."""
    large = [
        row("apply-large", 1.0, run=run, cpu=cpu(total), parameters={"journal_rows": 5_000_000})
        for run, total in ((1, 66.0), (2, 52.0), (3, 50.0))
    ]
    found = {target: (measured, verdict) for target, measured, verdict in ratios(
        [*CPU_RUNS, *large])}  # fmt: skip
    key = "apply-large (journal of 5,000,000 rows), per change <= 1.25x apply"
    assert found[key] == ("52 µs (50-66), 1.19x apply (1.10-1.30)", "met")
    over = {**large[0], "cpu": cpu(76.0)}  # 1.27x its run's apply
    found = {target: verdict for target, _, verdict in ratios([*CPU_RUNS, over])}
    assert found[key] == "not met"
    skipped = {**large[0], "audit_skipped": "not audited: too big"}
    assert "*apply-large*: not audited: too big." in markdown([*CPU_RUNS, skipped], "bench")


def test_the_cpu_table_gives_each_process_with_the_spread_and_x_echo() -> None:
    """The markdown CPU table: a column per process (ledgerd's first, backends last), the
    median of the runs with the lowest-highest, the total and x echo; the json annotation
    writes x echo into each row."""
    text = markdown(CPU_RUNS, "ledgerd bench --runs 3")
    assert "## CPU per operation" in text and "median of 3 runs" in text
    header = next(line for line in text.splitlines() if line.startswith("| scenario | per |"))
    assert header == (
        "| scenario | per | echo server | ledgerd consumer+cache | ledgerd api+relay+cache"
        " | mariadb | total | x echo |"
    )
    assert "| apply | change | - | 31.5 (30.0-45.0) | - | 10.5 (10.0-15.0) | 42.0 (40.0-60.0)" \
        " | 0.16 (0.15-0.20) |" in text  # fmt: skip
    assert "| change-single (1 worker) (run 2) |" in text
    rows = [dict(r) for r in CPU_RUNS]
    annotate(rows)
    assert rows[1]["cpu"]["x_echo"] == 0.2 and "x_echo" not in rows[0]["cpu"]


def test_the_terminal_table_lists_cpu_per_process() -> None:
    """The table printed after a run ends with CPU-µs per op, per process and run."""
    text = table(CPU_RUNS)
    assert "CPU-µs per operation, per process" in text
    assert any(
        line.split()[:2] == ["apply", "2"] and line.split()[-2:] == ["40.0", "0.16"]
        for line in text.splitlines()
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
