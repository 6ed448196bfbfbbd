"""Result tables: the terminal tables, JSON files and docs/benchmarks.md."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """Every row, then the pipeline figures of the change scenarios, then CPU per op."""
    text = _text_table(COLUMNS, results)
    followed = [r for r in results if "end_to_end_rate" in r]
    if followed:
        text += "\n\n" + _text_table(PIPELINE_COLUMNS, followed)
    measured = [r for r in results if r.get("cpu")]
    if measured:
        names = cpu_names(measured)
        rows = [["scenario", "run", *names, "total µs/op", "x echo"]]
        for r in measured:
            per_op = r["cpu"]["per_op_us"]
            x_echo = cpu_echo_ratio(results, r)
            rows.append(
                [label(r), str(r.get("run", 1))]
                + [_us(per_op.get(name)) for name in names]
                + [_us(r["cpu"]["total_us"]), "-" if x_echo is None else f"{x_echo:.2f}"]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        text += "\n\nCPU-µs per operation, per process (idle subtracted):\n" + "\n".join(lines)
    return text


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


# The order of the CPU columns: ledgerd's processes (as named), then the backends.
BACKENDS = ("mariadb", "kafka", "redis")


def cpu_names(results: Sequence[Result]) -> list[str]:
    """Every process name in the CPU figures of ``results``: ledgerd's first, backends last."""
    names: list[str] = []
    for r in results:
        for name in (r.get("cpu") or {}).get("per_op_us", {}):
            if name not in names:
                names.append(name)
    return [n for n in names if n not in BACKENDS] + [n for n in BACKENDS if n in names]


def _run_of(result: Result) -> int:
    return int(result.get("run") or 1)


def cpu_echo_ratio(results: Sequence[Result], result: Result) -> float | None:
    """A row's total CPU per operation over the echo server's CPU per call, echo measured
    in the same run (the same ``run`` number when the bench repeated the scenarios)."""
    if result["scenario"] == "echo":
        return None
    return _cpu_ratio(result, [r for r in results if r["scenario"] == "echo"])


def _cpu_ratio(result: Result, yardsticks: Sequence[Result]) -> float | None:
    """``result``'s total CPU per operation over that of the yardstick row of its own run
    (the first one measured when no run matches)."""
    if not result.get("cpu"):
        return None
    measured = [r for r in yardsticks if r.get("cpu")]
    yardstick = next((r for r in measured if _run_of(r) == _run_of(result)), None)
    yardstick = yardstick or next(iter(measured), None)
    if yardstick is None or not yardstick["cpu"]["total_us"]:
        return None
    return float(result["cpu"]["total_us"]) / float(yardstick["cpu"]["total_us"])


def annotate(results: Sequence[Result]) -> None:
    """Write each row's CPU multiple of echo (``cpu.x_echo``) into it, for --json."""
    for r in results:
        ratio = cpu_echo_ratio(results, r)
        if ratio is not None:
            r["cpu"]["x_echo"] = round(ratio, 3)


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


@dataclass(frozen=True, slots=True)
class Target:
    """A budget of CPU per operation (issue 22), in µs and/or as a multiple of echo."""

    scenario: str
    operation: str
    max_us: float | None
    max_x_echo: float | None
    filed: str  # what it cost when the issue was filed (production, all server processes)


TARGETS = (
    Target("echo", "echo: bare grpc.aio unary server, per call (the yardstick)", None, None,
           "262-271 µs"),
    Target("apply", "apply (consumer drains a preloaded log), per change", 45, 0.17,
           "116-123 µs"),
    Target("change-batch", "ChangeBalances x1000, accepted and applied, per change", 70, 0.26,
           "166-200 µs"),
    Target("change-single", "ChangeBalance wait=false, until applied, per change", None, 1.7,
           "780-980 µs"),
    Target("read", "GetBalance, per call", None, 1.25, "480-500 µs"),
)  # fmt: skip
# apply-large: CPU per change within this multiple of the empty-journal apply (issue 22, 3).
APPLY_LARGE_MAX_X_APPLY = 1.25


@dataclass(frozen=True, slots=True)
class Spread:
    """A figure over the runs of one row: median, lowest, highest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        return cls(statistics.median(values), min(values), max(values)) if values else None

    def show(self, form: Callable[[float], str], unit: str = "") -> str:
        """``median unit (low-high)``, or ``median unit`` when every run agreed."""
        if self.low == self.high:
            return f"{form(self.median)}{unit}"
        return f"{form(self.median)}{unit} ({form(self.low)}-{form(self.high)})"


def _groups(results: Sequence[Result]) -> dict[str, list[Result]]:
    """Rows by label (scenario and workers), the runs of one label together, in order."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(label(r), []).append(r)
    return groups


def _cpu_spreads(
    results: Sequence[Result], rows: Sequence[Result]
) -> tuple[Spread | None, Spread | None]:
    """Total CPU-µs per op and its multiple of echo over the runs of one label."""
    totals = [float(r["cpu"]["total_us"]) for r in rows if r.get("cpu")]
    ratios_ = [x for r in rows if (x := cpu_echo_ratio(results, r)) is not None]
    return Spread.of(totals), Spread.of(ratios_)


def _us_form(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _x_form(value: float) -> str:
    return f"{value:.2f}"


def cpu_targets(results: Sequence[Result]) -> list[tuple[str, str, str, str, str]]:
    """(operation, target, filed, measured, verdict) for issue 22's CPU budgets; a target
    is met when the median over the runs is within it."""
    rows: list[tuple[str, str, str, str, str]] = []
    groups = _groups(results)
    for target in TARGETS:
        for name, runs in groups.items():
            if runs[0]["scenario"] != target.scenario:
                continue
            total, x_echo = _cpu_spreads(results, runs)
            if total is None:
                continue
            budget = [f"<= {target.max_us:g} µs" if target.max_us is not None else "",
                      f"<= {target.max_x_echo:g}x echo" if target.max_x_echo is not None
                      else ""]  # fmt: skip
            measured = total.show(_us_form, " µs")
            if x_echo is not None:
                measured += f", {x_echo.show(_x_form, 'x echo')}"
            checks = []
            if target.max_us is not None:
                checks.append(total.median <= target.max_us)
            if target.max_x_echo is not None and x_echo is not None:
                checks.append(x_echo.median <= target.max_x_echo)
            verdict = "-" if not checks else "met" if all(checks) else "not met"
            shown = target.operation if name == target.scenario else f"{target.operation} [{name}]"
            rows.append((shown, " and ".join(b for b in budget if b) or "-", target.filed,
                         measured, verdict))  # fmt: skip
    large, empty = groups.get("apply-large"), groups.get("apply")
    if large and empty:
        big = _cpu_spreads(results, large)[0]
        # Each run against its own run's apply, as x echo: this machine's load moves both
        # together, so a median over medians can pair a quiet run with a loaded one.
        x_apply = Spread.of([x for r in large if (x := _cpu_ratio(r, empty)) is not None])
        if big is not None and x_apply is not None:
            rows.append((
                f"apply-large (journal of {large[0]['parameters'].get('journal_rows', 0):,}"
                " rows), per change",
                f"<= {APPLY_LARGE_MAX_X_APPLY:g}x apply", "-",
                f"{big.show(_us_form, ' µs')}, {x_apply.show(_x_form, 'x apply')}",
                "met" if x_apply.median <= APPLY_LARGE_MAX_X_APPLY else "not met",
            ))  # fmt: skip
    return rows


def ratios(results: Sequence[Result]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the targets of the performance issues: CPU per
    operation (issue 22; rates are information only), and resident memory."""
    rows = [
        (operation if budget == "-" else f"{operation} {budget}", measured, verdict)
        for operation, budget, _, measured, verdict in cpu_targets(results)
    ]
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


def _runs(results: Sequence[Result]) -> int:
    return max((_run_of(r) for r in results), default=1)


def _unit_of_op(result: Result) -> str:
    unit = str(result.get("unit", "changes/s"))
    return {"calls/s": "call", "transfers/s": "transfer", "events/s": "event"}.get(unit, "change")


def cpu_markdown(results: Sequence[Result]) -> list[str]:
    """The CPU table: per label, each process's CPU-µs per operation, the total and its
    multiple of echo; the median over the runs with the lowest-highest in brackets."""
    measured = [r for r in results if r.get("cpu")]
    if not measured:
        return []
    names = cpu_names(measured)
    runs = _runs(results)
    lines = [
        "",
        "## CPU per operation",
        "",
        "CPU time (user + system, from /proc) each process spent per operation, in µs:"
        " the ledgerd processes the bench started (with their API workers), and MariaDB,"
        " Kafka and Redis found by their listening ports; the load generator is not"
        " counted. The backends' idle rate, sampled for a few seconds before each scenario"
        " started its servers, is subtracted; what else uses a shared backend during a"
        " scenario stays in its figure (the spread over runs shows it). Echo, read and"
        " the change scenarios first run their own load unmeasured for a few seconds"
        " (--warmup; a change scenario's then applied): a fresh server's first calls and"
        " the broker's JIT compiling are start-up costs. A few seconds do not cover a"
        " broker just started: its C2 compiler ran for 16 CPU-seconds over its first 4"
        " minutes of change-single load (Kafka 113-135 µs a change, then 51; about 30 after"
        " 40 minutes), so measure on a broker that has carried load for minutes."
        " Change scenarios are measured"
        " until every accepted change has an outcome; apply from the consumer's start to"
        " its last change. x echo: the total over the echo server's CPU per call in the"
        " same run. The echo server runs on the standard asyncio loop, ledgerd's servers"
        " on their default (LEDGERD_EVENT_LOOP, uvloop)."
        + (
            f" Each figure is the median of {runs} runs, the lowest and highest in brackets."
            if runs > 1
            else ""
        ),
        "",
    ]
    header = ["scenario", "per", *names, "total", "x echo"]
    rows = []
    for name, group in _groups(measured).items():
        cells = [name, _unit_of_op(group[0])]
        for process in names:
            spread = Spread.of(
                [float(r["cpu"]["per_op_us"][process]) for r in group
                 if process in r["cpu"]["per_op_us"]]
            )  # fmt: skip
            cells.append("-" if spread is None else spread.show(_us))
        total, x_echo = _cpu_spreads(results, group)
        cells.append("-" if total is None else total.show(_us))
        cells.append("-" if x_echo is None else x_echo.show(lambda v: f"{v:.2f}"))
        rows.append(cells)
    columns = ["scenario", "unit", *names, "total", "x"]
    return lines + _markdown_table(columns, header, rows)


def markdown(results: Sequence[Result], command: str) -> str:
    machine = results[0]["machine"] if results else {}
    runs = _runs(results)
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on"
        f" {machine.get('cpus')} CPUs ({machine.get('cpu_model', 'model not recorded')}),"
        f" {machine.get('memory_gb')} GB, Python {machine.get('python')},"
        f" {machine.get('platform')}.",
        "Server, MariaDB, Kafka, Redis and the load generator share the machine: rates"
        " depend on what else runs, CPU per operation much less. Compare figures through"
        " their ratio to `echo` measured in the same run." + _loads(results),
        "",
        f"Reproduce: `{command}` (after `make test` installed the stack).",
        "Compare a later run with this one:"
        " `ledgerd bench --scenario all --compare data/bench/results/all.json`;"
        " two saved runs: `ledgerd bench --compare OLD.json NEW.json`.",
    ]
    lines += cpu_markdown(results)
    lines += ["", "## Targets", ""]
    targets = cpu_targets(results)
    if targets:
        lines += [
            "CPU per operation over every server process (issue 22); met when the median"
            " of the runs is within the budget. When filed: production stack, 2026-12-06.",
            "",
            "| operation | target | when filed | measured | |",
            "|---|---|---:|---:|---|",
        ]
        lines += [f"| {o} | {t} | {f} | {m} | {v} |" for o, t, f, m, v in targets]
    others = [row for row in ratios(results) if row[0].startswith("resident memory")]
    if others:
        lines += ["", "| target | measured | |", "|---|---:|---|"]
        lines += [f"| {t} | {m} | {v} |" for t, m, v in others]
    if not targets and not others:
        lines.append("No target concerns the scenarios of this run.")
    lines += [
        "",
        "## Rates",
        "",
        "For information: on two shared cores a rate says as much about the machine's other"
        " work as about ledgerd.",
        "",
    ]
    header = ["scenario", "API workers", "throughput", "unit", "x echo", "p50 ms", "p99 ms",
              "max ms", "errors", "audit"]  # fmt: skip
    rows = []
    for r in results:
        to_echo = echo_ratio(results, r) if r["scenario"] in ECHO_COMPARED else None
        cells = [_cell(r, c) for c in COLUMNS]
        if runs > 1:
            cells[0] += f" (run {_run_of(r)})"
        cells.insert(4, "-" if to_echo is None else f"{to_echo:.2f}")
        rows.append(cells)
    lines += _markdown_table([*COLUMNS[:4], "x", *COLUMNS[4:]], header, rows)
    if any("(1 seen)" in row[1] for row in rows):
        lines += [
            "",
            "*N (1 seen)*: N API workers were asked for (`LEDGERD_API_WORKERS`) but the server"
            " ran one process, so that row measures one worker.",
        ]
    skipped = {label(r): r["audit_skipped"] for r in results if r.get("audit_skipped")}
    for name, why in skipped.items():
        lines += ["", f"*{name}*: {why}."]
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
        table_rows = []
        for r in followed:
            cells = [_cell(r, c) for c in PIPELINE_COLUMNS]
            if runs > 1:
                cells[0] += f" (run {_run_of(r)})"
            table_rows.append(cells)
        lines += _markdown_table(PIPELINE_COLUMNS, header, table_rows)
    lines += ["", "## Parameters", ""]
    parameters = {label(r): r["parameters"] for r in results}
    lines += [f"- **{name}**: {json.dumps(shown)}" for name, shown in parameters.items()]
    return "\n".join(lines) + "\n"
