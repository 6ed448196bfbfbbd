"""``ledgerd bench --compare``: new/old ratios per scenario and figure, regressions marked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledgerd.bench.compare import compare, load_results, render
from ledgerd.cli import main


def row(scenario: str, throughput: float, workers: int | None = 1, **figures: Any) -> Any:
    return {"scenario": scenario, "workers": workers, "throughput": throughput, **figures}


OLD = [
    row("echo", 1000.0, p50_ms=10.0, p99_ms=20.0),
    row("read", 800.0, workers=1, p50_ms=10.0, p99_ms=20.0),
    row("read", 1200.0, workers=2, p50_ms=10.0, p99_ms=20.0),
    row("change-batch", 20_000.0, accepted_rate=20_000.0, end_to_end_rate=10_000.0),
]
NEW = [
    row("echo", 1000.0, p50_ms=10.0, p99_ms=30.0),
    row("read", 700.0, workers=1, p50_ms=10.0, p99_ms=20.0),
    row("read", 1200.0, workers=2, p50_ms=8.0, p99_ms=20.0),
    row("change-batch", 20_000.0, accepted_rate=20_000.0, end_to_end_rate=12_000.0),
]


def verdicts(old: Any, new: Any) -> dict[tuple[str, str], str]:
    return {(line.row, line.figure): line.verdict for line in compare(old, new)}


def test_a_rate_below_the_tolerance_and_a_slower_latency_are_regressions() -> None:
    """read (1 worker) 0.875x throughput and x echo; echo's p99 1.5x: both REGRESSION."""
    found = verdicts(OLD, NEW)
    assert found[("read (1 worker)", "throughput")] == "REGRESSION"
    assert found[("read (1 worker)", "x echo")] == "REGRESSION"
    assert found[("echo", "p99 ms")] == "REGRESSION"
    assert found[("echo", "throughput")] == ""


def test_rows_match_by_workers_and_improvements_are_marked_better() -> None:
    """read with 2 workers compares with its own old row: a lower p50 and a higher
    end-to-end rate are better, an unchanged figure has no mark."""
    found = verdicts(OLD, NEW)
    assert found[("read (2 workers)", "throughput")] == ""
    assert found[("read (2 workers)", "p50 ms")] == "better"
    assert found[("change-batch", "end to end/s")] == "better"


def test_ratios_are_new_over_old() -> None:
    """The ratio of each figure is the new value over the old one."""
    lines = {(line.row, line.figure): line for line in compare(OLD, NEW)}
    line = lines[("change-batch", "end to end/s")]
    assert (line.old, line.new, line.ratio) == (10_000.0, 12_000.0, 1.2)


def test_rows_in_one_run_only_are_listed() -> None:
    """A scenario missing from either run is named, not silently dropped."""
    found = verdicts(OLD[:2], [NEW[0], NEW[3]])
    assert found[("change-batch", "-")] == "not in the old run"
    assert found[("read (1 worker)", "-")] == "not in the new run"


def test_results_saved_before_the_workers_field_count_as_one_worker() -> None:
    """An old row without workers compares with the new one-worker row."""
    old = [{k: v for k, v in r.items() if k != "workers"} for r in OLD]
    found = verdicts(old, NEW)
    assert found[("read (1 worker)", "throughput")] == "REGRESSION"


def test_load_results_reads_the_single_and_the_list_form(tmp_path: Path) -> None:
    """--json writes one object for one row and a list for several: both load."""
    single, several = tmp_path / "one.json", tmp_path / "all.json"
    single.write_text(json.dumps(OLD[0]))
    several.write_text(json.dumps(OLD))
    assert load_results(single) == [OLD[0]]
    assert load_results(several) == OLD


def test_load_results_refuses_other_json(tmp_path: Path) -> None:
    """A JSON file that is not a bench result is an error naming the file."""
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match=r"other\.json"):
        load_results(other)


def test_render_counts_the_regressions() -> None:
    """The table ends with how many figures regressed."""
    text = render(compare(OLD, NEW))
    assert "3 REGRESSION(s)" in text
    assert text.count("REGRESSION") == 4  # three marks and the summary


def test_cli_compares_two_saved_runs_without_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ledgerd bench --compare OLD.json NEW.json` prints the comparison and exits 0."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(OLD))
    new.write_text(json.dumps(NEW))
    assert main(["bench", "--compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "read (1 worker)" in out and "0.88x" in out and "REGRESSION" in out


def test_cli_rejects_an_unreadable_comparison_file_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing OLD.json fails at once (exit 2), before minutes of benchmark."""
    assert main(["bench", "--compare", str(tmp_path / "missing.json")]) == 2
    assert "--compare" in capsys.readouterr().err


def cpu_row(scenario: str, run: int, total: float, **per_op: float) -> Any:
    return row(scenario, 1.0, run=run, cpu={"total_us": total, "per_op_us": per_op})


def test_cpu_per_operation_is_compared_per_process_on_the_median_of_the_runs() -> None:
    """Three runs a side count with their medians: apply's total 120 -> 60 µs is better,
    its mariadb 20 -> 30 µs a REGRESSION, and its multiple of echo is the median of each
    run's own ratio (120/250, 110/260, 130/270 -> 0.48)."""
    old = [
        cpu_row(scenario, run, total, **{name: total * share for name, share in split})
        for run, echo_us, apply_us in ((1, 250.0, 120.0), (2, 260.0, 110.0), (3, 270.0, 130.0))
        for scenario, total, split in (
            ("echo", echo_us, [("echo server", 1.0)]),
            ("apply", apply_us, [("ledgerd consumer", 1 - 20 / apply_us),
                                 ("mariadb", 20 / apply_us)]),
        )
    ]  # fmt: skip
    new = [
        cpu_row("echo", 1, 260.0, **{"echo server": 260.0}),
        cpu_row("apply", 1, 60.0, **{"ledgerd consumer": 30.0, "mariadb": 30.0}),
    ]
    lines = {(line.row, line.figure): line for line in compare(old, new)}
    total = lines[("apply", "CPU µs/op")]
    assert (total.old, total.new, total.verdict) == (120.0, 60.0, "better")
    mariadb = lines[("apply", "CPU µs/op mariadb")]
    assert (mariadb.old, mariadb.new, mariadb.verdict) == (pytest.approx(20.0), 30.0,
                                                           "REGRESSION")  # fmt: skip
    x_echo = lines[("apply", "CPU x echo")]
    assert x_echo.old == pytest.approx(0.48) and x_echo.new == pytest.approx(60 / 260)
    assert ("apply", "CPU µs/op ledgerd consumer") in lines
