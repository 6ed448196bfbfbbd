"""Result tables: the terminal table, JSON files and docs/benchmarks.md."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "throughput", "unit", "p50_ms", "p99_ms", "p100_ms", "errors", "audit")


def _cell(result: dict[str, Any], column: str) -> str:
    value = result.get(column)
    if column == "throughput":
        return f"{value:,.0f}"
    if column == "errors":
        return str(sum(value.values())) if value else "0"
    if column == "audit":
        return "-" if value is None else ("ok" if value["ok"] else "FAILED")
    return str(value)


def table(results: Sequence[dict[str, Any]]) -> str:
    rows = [list(COLUMNS)] + [[_cell(r, c) for c in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def ratios(results: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the targets of the performance issue."""
    by = {r["scenario"]: r["throughput"] for r in results}

    def ratio(a: str, b: str) -> float | None:
        return by[a] / by[b] if a in by and b in by and by[b] else None

    rows: list[tuple[str, str, str]] = []

    def add(target: str, value: float | None, goal: float, unit: str = "x") -> None:
        if value is None:
            return
        shown = f"{value:.2f}{unit}" if unit == "x" else f"{value:,.0f} {unit}"
        rows.append((target, shown, "met" if value >= goal else "not met"))

    add("change-single >= 0.8 x echo", ratio("change-single", "echo"), 0.8)
    add("read >= 0.8 x echo", ratio("read", "echo"), 0.8)
    add("change-batch >= 50,000 changes/s", by.get("change-batch"), 50_000, "changes/s")
    add("apply >= 100,000 changes/s", by.get("apply"), 100_000, "changes/s")
    add("apply >= 30 x baseline-sql", ratio("apply", "baseline-sql"), 30)
    add("hot >= 0.5 x change-batch", ratio("hot", "change-batch"), 0.5)
    memory = next((r for r in results if r["scenario"] == "memory"), None)
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


def markdown(results: Sequence[dict[str, Any]], command: str) -> str:
    machine = results[0]["machine"] if results else {}
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on"
        f" {machine.get('cpus')} CPUs, {machine.get('memory_gb')} GB,"
        f" Python {machine.get('python')}, {machine.get('platform')}.",
        "Server, MariaDB, Kafka, Redis and the load generator share the machine.",
        "",
        f"Reproduce: `{command}` (after `make test` installed the stack).",
        "",
        "| scenario | throughput | unit | p50 ms | p99 ms | max ms | errors | audit |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['throughput']:,.0f} | {r['unit']} | {r['p50_ms']} |"
            f" {r['p99_ms']} | {r['p100_ms']} | {_cell(r, 'errors')} | {_cell(r, 'audit')} |"
        )
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---:|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in ratios(results)]
    lines += ["", "## Parameters", ""]
    lines += [f"- **{r['scenario']}**: {json.dumps(r['parameters'])}" for r in results]
    return "\n".join(lines) + "\n"
