"""Result tables: the terminal tables, JSON files and docs/benchmarks.md."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ledgerd.bench.names import ECHO_COMPARED, run_label

Result = dict[str, Any]

COLUMNS = (
    "scenario", "workers", "throughput", "unit", "p50_ms", "p99_ms", "p100_ms", "errors", "audit",
)  # fmt: skip
# The change scenarios' pipeline figures (pipeline.EndToEnd), in the order shown.
PIPELINE_COLUMNS = (
    "scenario", "accepted_rate", "end_to_end_rate", "consumer_lag_end", "unfinished_end",
    "drain_s",
)  # fmt: skip


def label(result: Result) -> str:
    """The row's name: the scenario, with its API workers where those vary."""
    return run_label(result["scenario"], result.get("workers"))


def _workers(result: Result) -> str:
    seen, asked = result.get("api_processes"), result["workers"]
    # A server that ignores the setting runs one process: the table says so.
    return f"{asked} (1 seen)" if seen == 1 and asked > 1 else str(asked)


_FORMATS: dict[str, Callable[[Any], str]] = {
    "throughput": lambda v: f"{v:,.0f}",
    "accepted_rate": lambda v: f"{v:,.0f}",
    "end_to_end_rate": lambda v: f"{v:,.0f}",
    "consumer_lag_end": lambda v: f"{v:,}",
    "unfinished_end": lambda v: f"{v:,}",
    "errors": lambda v: str(sum(v.values())),
    "audit": lambda v: "ok" if v["ok"] else "FAILED",
}


def _cell(result: Result, column: str) -> str:
    value = result.get(column)
    if column == "scenario":
        return label(result)
    if value is None:
        return "-"
    if column == "workers":
        return _workers(result)
    return _FORMATS.get(column, str)(value)


def _text_table(columns: Sequence[str], results: Sequence[Result]) -> str:
    rows = [list(columns)] + [[_cell(r, c) for c in columns] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table(results: Sequence[Result]) -> str:
    """Every row, then the pipeline figures of the change scenarios."""
    text = _text_table(COLUMNS, results)
    followed = [r for r in results if "end_to_end_rate" in r]
    if followed:
        text += "\n\n" + _text_table(PIPELINE_COLUMNS, followed)
    return text


def write_json(path: Path, results: Sequence[Result]) -> None:
    """One result as an object (the single-scenario form), several as a list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content: Result | list[Result] = results[0] if len(results) == 1 else list(results)
    path.write_text(json.dumps(content, indent=2) + "\n")


def echo_ratio(results: Sequence[Result], result: Result) -> float | None:
    """Throughput over the echo of the same run (the noise-robust figure)."""
    echo = next((r for r in results if r["scenario"] == "echo"), None)
    if echo is None or not echo["throughput"] or result["scenario"] == "echo":
        return None
    return float(result["throughput"]) / float(echo["throughput"])


def ratios(results: Sequence[Result]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the targets of the performance issues."""
    # Scenarios run with several worker counts count with their first (default) row here.
    by: dict[str, Result] = {}
    for r in results:
        by.setdefault(r["scenario"], r)

    def figure(scenario: str, name: str = "throughput") -> float | None:
        value = by.get(scenario, {}).get(name)
        return None if value is None else float(value)

    def ratio(a: str, b: str) -> float | None:
        top, bottom = figure(a), figure(b)
        return top / bottom if top is not None and bottom else None

    rows: list[tuple[str, str, str]] = []

    def add(target: str, value: float | None, goal: float, unit: str = "x") -> None:
        if value is None:
            return
        shown = f"{value:.2f}{unit}" if unit == "x" else f"{value:,.0f} {unit}"
        rows.append((target, shown, "met" if value >= goal else "not met"))

    for scenario, goal in (("change-single", 0.8), ("read", 0.9)):
        for r in results:
            if r["scenario"] == scenario:
                add(f"{label(r)} >= {goal} x echo", echo_ratio(results, r), goal)
    add(
        "change-batch end to end >= 50,000 changes/s",
        figure("change-batch", "end_to_end_rate"),
        50_000,
        "changes/s",
    )
    add("apply >= 100,000 changes/s", figure("apply"), 100_000, "changes/s")
    add("apply >= 10 x baseline-sql", ratio("apply", "baseline-sql"), 10)
    add("hot >= 0.5 x change-batch", ratio("hot", "change-batch"), 0.5)
    memory = by.get("memory")
    if memory is not None and memory.get("audit"):
        rss_gb = memory["audit"]["rss_bytes"] / 2**30
        accounts = memory["audit"]["accounts"]
        rows.append(
            (
                f"resident memory <= 1 GB with {accounts:,} accounts",
                f"{rss_gb:.2f} GB ({memory['throughput']:,.0f} B/account)",
                "met" if rss_gb <= 1.0 else "not met",
            )
        )
    return rows


def _markdown_table(
    columns: Sequence[str], header: Sequence[str], rows: list[list[str]]
) -> list[str]:
    align = ["---:" if c not in ("scenario", "unit", "audit") else "---" for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _loads(results: Sequence[Result]) -> str:
    """The machine's load average as each scenario started: how busy it was."""
    loads = [r["machine"]["load_1m"] for r in results if "load_1m" in r.get("machine", {})]
    if not loads:
        return ""
    return f" Load average (1 min) as scenarios started: {min(loads)} to {max(loads)}."


def markdown(results: Sequence[Result], command: str) -> str:
    machine = results[0]["machine"] if results else {}
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on"
        f" {machine.get('cpus')} CPUs ({machine.get('cpu_model', 'model not recorded')}),"
        f" {machine.get('memory_gb')} GB, Python {machine.get('python')},"
        f" {machine.get('platform')}.",
        "Server, MariaDB, Kafka, Redis and the load generator share the machine,",
        "so compare figures through their ratio to `echo` measured in the same run."
        + _loads(results),
        "",
        f"Reproduce: `{command}` (after `make test` installed the stack).",
        "Compare a later run with this one:"
        " `ledgerd bench --scenario all --compare data/bench/results/all.json`;"
        " two saved runs: `ledgerd bench --compare OLD.json NEW.json`.",
        "",
    ]
    header = ["scenario", "API workers", "throughput", "unit", "x echo", "p50 ms", "p99 ms",
              "max ms", "errors", "audit"]  # fmt: skip
    rows = []
    for r in results:
        to_echo = echo_ratio(results, r) if r["scenario"] in ECHO_COMPARED else None
        cells = [_cell(r, c) for c in COLUMNS]
        cells.insert(4, "-" if to_echo is None else f"{to_echo:.2f}")
        rows.append(cells)
    lines += _markdown_table([*COLUMNS[:4], "x", *COLUMNS[4:]], header, rows)
    if any("(1 seen)" in row[1] for row in rows):
        lines += [
            "",
            "*N (1 seen)*: N API workers were asked for (`LEDGERD_API_WORKERS`) but the server"
            " ran one process, so that row measures one worker.",
        ]
    followed = [r for r in results if "end_to_end_rate" in r]
    if followed:
        lines += [
            "",
            "## End to end",
            "",
            "Accepted: changes/s the API accepted while the load ran. End to end: changes/s"
            " from the first call to the last change applied (the run waits until every"
            " accepted change has an outcome). Lag: log records not yet applied when the"
            " load stopped; unfinished: accepted requests without an outcome then"
            " (including those the relay had not published). Drain: seconds from the"
            " load's end to the last change applied.",
            "",
        ]
        header = ["scenario", "accepted/s", "end to end/s", "lag at end", "unfinished at end",
                  "drain s"]  # fmt: skip
        lines += _markdown_table(
            PIPELINE_COLUMNS, header, [[_cell(r, c) for c in PIPELINE_COLUMNS] for r in followed]
        )
    lines += ["", "## Targets", ""]
    targets = ratios(results)
    if targets:
        lines += ["| target | measured | |", "|---|---:|---|"]
        lines += [f"| {t} | {m} | {v} |" for t, m, v in targets]
    else:
        lines.append("No target concerns the scenarios of this run.")
    lines += ["", "## Parameters", ""]
    lines += [f"- **{label(r)}**: {json.dumps(r['parameters'])}" for r in results]
    return "\n".join(lines) + "\n"
