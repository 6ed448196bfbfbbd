"""``ledgerd bench`` options: scenario lists and API worker counts."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledgerd.bench import report, scenarios
from ledgerd.bench.names import SCENARIOS
from ledgerd.bench.scenarios import calls
from ledgerd.cli import build_parser, main
from ledgerd.cli.benchmark import api_worker_counts


def bench_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["bench", *argv])


def test_scenario_takes_all_or_a_comma_separated_list() -> None:
    """The default is every scenario; a list runs those, in its order."""
    assert bench_args().scenario == SCENARIOS
    assert bench_args("--scenario", "read,echo").scenario == ["read", "echo"]


def test_workers_default_to_one_and_two_on_production_and_one_embedded() -> None:
    """change-single and read run with 1 and 2 API workers on the production stack, with 1 on
    the embedded stack (which refuses more), unless told otherwise."""
    assert bench_args().workers is None
    assert api_worker_counts(None, "production") == [1, 2]
    assert api_worker_counts(None, "embedded") == [1]
    assert bench_args("--workers", "1").workers == [1]
    assert api_worker_counts([1], "embedded") == [1]
    assert api_worker_counts([1, 3], "production") == [1, 3]


def test_more_workers_on_the_embedded_stack_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Asking the embedded stack for 2 API processes exits 2 naming --workers, before any run."""
    assert api_worker_counts([2], "embedded") is None
    assert main(["bench", "--stack", "embedded", "--workers", "1,2"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_more_consumers_on_the_embedded_stack_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The embedded data directory is locked by its one process: a second consumer process
    could not open it, so asking for one exits 2 naming --consumers, before any run."""
    assert main(["bench", "--stack", "embedded", "--scenario", "apply", "--consumers", "2"]) == 2
    assert "--consumers" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [("--scenario", "echo,nope"), ("--workers", "0"), ("--workers", "one")]
)
def test_bad_scenarios_or_worker_counts_are_usage_errors(argv: tuple[str, str]) -> None:
    """An unknown scenario or a worker count below 1 stops at parsing (exit 2)."""
    with pytest.raises(SystemExit) as stopped:
        bench_args(*argv)
    assert stopped.value.code == 2


def test_events_are_on_unless_told_off() -> None:
    """--events defaults to on; on and off are the only values (anything else exits 2)."""
    assert bench_args().events == "on"
    assert bench_args("--events", "off").events == "off"
    with pytest.raises(SystemExit) as stopped:
        bench_args("--events", "false")
    assert stopped.value.code == 2


@pytest.mark.parametrize(("given", "setting"), [("on", "true"), ("off", "false")])
def test_events_reach_the_servers_the_bench_starts(
    given: str, setting: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--events becomes LEDGERD_EVENTS in the settings of every deployment it starts (they
    take settings only from the bench), on either stack."""
    seen: list[scenarios.Options] = []

    def record(options: scenarios.Options) -> dict[str, Any]:
        seen.append(options)
        return {"scenario": options.scenario, "ok": True}

    monkeypatch.setattr(scenarios, "run", record)
    monkeypatch.setattr(report, "table", lambda results: "")
    monkeypatch.setattr(report, "ratios", lambda results: [])
    argv = ["--scenario", "apply", "--stack", "embedded", "--workdir", str(tmp_path)]
    assert main(["bench", *argv, "--events", given]) == 0
    (options,) = seen
    assert options.events is (given == "on")
    assert scenarios.stack_env(options)["LEDGERD_EVENTS"] == setting
    production = replace(options, stack="production")
    assert scenarios.stack_env(production)["LEDGERD_EVENTS"] == setting


def test_runs_repeat_every_scenario_run_after_run_and_number_the_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--runs 2 runs the scenario list twice in turn (echo, apply, echo, apply), each row
    carrying its run number into the JSON; --idle-window, --warmup and --journal-rows reach
    the scenarios' options."""
    seen: list[scenarios.Options] = []

    def record(options: scenarios.Options) -> dict[str, Any]:
        seen.append(options)
        return {"scenario": options.scenario, "ok": True}

    monkeypatch.setattr(scenarios, "run", record)
    monkeypatch.setattr(report, "table", lambda results: "")
    monkeypatch.setattr(report, "ratios", lambda results: [])
    result = tmp_path / "runs.json"
    argv = ["--scenario", "echo,apply", "--stack", "embedded", "--workdir", str(tmp_path)]
    argv += ["--runs", "2", "--idle-window", "0.5", "--warmup", "1.5", "--journal-rows", "1000"]
    assert main(["bench", *argv, "--json", str(result)]) == 0
    assert [o.scenario for o in seen] == ["echo", "apply", "echo", "apply"]
    assert {(o.idle_window_s, o.warmup_s, o.journal_rows) for o in seen} == {(0.5, 1.5, 1000)}
    rows = json.loads(result.read_text())
    assert [(r["scenario"], r["run"]) for r in rows] == [
        ("echo", 1), ("apply", 1), ("echo", 2), ("apply", 2),
    ]  # fmt: skip


def test_apply_large_needs_one_mariadb_journal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply-large asked for on the embedded stack (or on shards) is a usage error; `all`
    on the embedded stack runs every other scenario and says it skipped apply-large."""
    seen: list[str] = []

    def record(options: scenarios.Options) -> dict[str, Any]:
        seen.append(options.scenario)
        return {"scenario": options.scenario, "ok": True}

    monkeypatch.setattr(scenarios, "run", record)
    monkeypatch.setattr(report, "table", lambda results: "")
    monkeypatch.setattr(report, "ratios", lambda results: [])
    workdir = ["--workdir", str(tmp_path)]
    assert main(["bench", "--scenario", "apply-large", "--stack", "embedded", *workdir]) == 2
    assert main(["bench", "--scenario", "apply-large", "--shards", "2", *workdir]) == 2
    assert seen == []
    assert main(["bench", "--stack", "embedded", *workdir]) == 0
    assert seen == [name for name in SCENARIOS if name != "apply-large"]
    assert "skipping apply-large" in capsys.readouterr().err


@pytest.mark.parametrize("warmup_s", [0.0, 1.5])
def test_a_warm_up_drives_the_scenarios_own_calls_for_its_seconds_unless_none(
    monkeypatch: pytest.MonkeyPatch, warmup_s: float
) -> None:
    """warm_up runs the measured load's calls, at its concurrency, for --warmup seconds
    (and nothing at 0); the scenario's own duration is left as it was."""
    driven: list[tuple[float, str, int]] = []

    async def drive(options: scenarios.Options, target: str, make_call: Any, label: str,
                    concurrency: int) -> None:  # fmt: skip
        assert (target, make_call) == ("127.0.0.1:1", "the calls")
        driven.append((options.duration_s, label, concurrency))

    monkeypatch.setattr(calls, "drive", drive)
    options = scenarios.Options(scenario="change-single", duration_s=10.0, warmup_s=warmup_s)
    calls.warm_up(options, "127.0.0.1:1", "the calls", 64)  # type: ignore[arg-type]
    assert driven == ([(1.5, "warm-up", 64)] if warmup_s else [])
    assert options.duration_s == 10.0
