"""``ledgerd bench --compare``: each figure of a run next to a saved run, as new/old.

Rows are matched by scenario and API workers (results saved before the workers
field existed ran one worker); the runs of one row (``--runs``) count with the
median of each figure. A figure is marked REGRESSION when it moved the wrong way
by more than the tolerance: a rate below 0.9x, a latency or CPU per operation
above 1/0.9x. Rates on a shared machine vary by about 25% from run to run; CPU
per operation (total, per process, and as a multiple of echo's) much less: those
are the figures to trust most.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerd.bench.names import WORKER_SCENARIOS
from ledgerd.bench.report import Result, cpu_echo_ratio, cpu_names, echo_ratio, label

TOLERANCE = 0.10


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure of a result row and which way is better (+1 higher, -1 lower, 0 neither)."""

    name: str
    shown_as: str
    better: int


FIGURES = (
    Figure("throughput", "throughput", +1),
    Figure("x_echo", "x echo", +1),
    Figure("accepted_rate", "accepted/s", +1),
    Figure("end_to_end_rate", "end to end/s", +1),
    Figure("p50_ms", "p50 ms", -1),
    Figure("p99_ms", "p99 ms", -1),
    # Grows with the accepted rate as much as it shrinks with a faster consumer.
    Figure("consumer_lag_end", "lag at end", 0),
    Figure("cpu_total_us", "CPU µs/op", -1),
    Figure("cpu_x_echo", "CPU x echo", -1),
)
CPU_PREFIX = "CPU µs/op "  # then a process name: that process's CPU per operation


@dataclass(frozen=True, slots=True)
class Line:
    """One figure of one row in both runs."""

    row: str
    figure: str
    old: float | None
    new: float | None
    ratio: float | None  # new / old
    verdict: str  # "REGRESSION", "better", "" (within tolerance), or why there is no ratio


def load_results(path: Path) -> list[Result]:
    """The rows of a file written by ``--json``: one result object, or a list of them.

    Raises:
        ValueError: the file holds something else.
    """
    content = json.loads(path.read_text())
    rows = [content] if isinstance(content, dict) else content
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and "scenario" in r and "throughput" in r for r in rows
    ):
        raise ValueError(f"{path}: not a ledgerd bench result (scenario, throughput)")
    return rows


def _key(result: Result) -> tuple[str, int]:
    return str(result["scenario"]), int(result.get("workers") or 1)


def _values(results: Sequence[Result], result: Result) -> dict[str, float | None]:
    """A row's figures by shown name: FIGURES, then the CPU per op of each process."""
    values: dict[str, float | None] = {}
    cpu = result.get("cpu") or {}
    for figure in FIGURES:
        value: Any = result.get(figure.name)
        if figure.name == "x_echo":
            # Only calls/s over calls/s means something: the single-call scenarios.
            single_call = result["scenario"] in WORKER_SCENARIOS
            value = echo_ratio(results, result) if single_call else None
        elif figure.name == "cpu_total_us":
            value = cpu.get("total_us")
        elif figure.name == "cpu_x_echo":
            value = cpu_echo_ratio(results, result)
        values[figure.shown_as] = None if value is None else float(value)
    for name, us in cpu.get("per_op_us", {}).items():
        values[CPU_PREFIX + name] = float(us)
    return values


def _medians(results: Sequence[Result], rows: Sequence[Result]) -> dict[str, float | None]:
    """Each figure's median over the runs of one row (figures a run lacks left out)."""
    each = [_values(results, r) for r in rows]
    names = list(dict.fromkeys(name for values in each for name in values))
    medians: dict[str, float | None] = {}
    for name in names:
        present = [v for values in each if (v := values.get(name)) is not None]
        medians[name] = statistics.median(present) if present else None
    return medians


def _figures(old: dict[str, float | None], new: dict[str, float | None]) -> list[Figure]:
    """The figures to show: FIGURES, then the CPU of every process either run measured."""
    processes = cpu_names(
        [{"cpu": {"per_op_us": dict.fromkeys(n[len(CPU_PREFIX) :] for n in values
                                             if n.startswith(CPU_PREFIX))}}
         for values in (old, new)]
    )  # fmt: skip
    return [*FIGURES, *(Figure(CPU_PREFIX + p, CPU_PREFIX + p, -1) for p in processes)]


def _verdict(figure: Figure, ratio: float | None) -> str:
    if ratio is None or not figure.better:
        return ""
    change = ratio if figure.better > 0 else 1 / ratio if ratio else float("inf")
    if change < 1 - TOLERANCE:
        return "REGRESSION"
    return "better" if change > 1 + TOLERANCE else ""


def compare(old: Sequence[Result], new: Sequence[Result]) -> list[Line]:
    """Every figure either run has, row by row in the new run's order (the median of a
    row's runs)."""
    old_groups, new_groups = _by_key(old), _by_key(new)
    lines: list[Line] = []
    for key, rows in new_groups.items():
        name = label(rows[0])
        before = old_groups.get(key)
        if before is None:
            lines.append(Line(name, "-", None, None, None, "not in the old run"))
            continue
        now, then = _medians(new, rows), _medians(old, before)
        for figure in _figures(then, now):
            a, b = then.get(figure.shown_as), now.get(figure.shown_as)
            if a is None and b is None:
                continue
            ratio = b / a if a and b is not None else None
            lines.append(Line(name, figure.shown_as, a, b, ratio, _verdict(figure, ratio)))
    lines += [
        Line(label(rows[0]), "-", None, None, None, "not in the new run")
        for key, rows in old_groups.items()
        if key not in new_groups
    ]
    return lines


def _by_key(results: Sequence[Result]) -> dict[tuple[str, int], list[Result]]:
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        groups.setdefault(_key(r), []).append(r)
    return groups


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def render(lines: Sequence[Line]) -> str:
    """A text table, then a count of regressions."""
    rows = [["scenario", "figure", "old", "new", "new/old", ""]]
    rows += [
        [
            line.row if i == 0 or lines[i - 1].row != line.row else "",
            line.figure,
            _number(line.old),
            _number(line.new),
            "-" if line.ratio is None else f"{line.ratio:.2f}x",
            line.verdict,
        ]
        for i, line in enumerate(lines)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4}
    text = [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    regressions = sum(line.verdict == "REGRESSION" for line in lines)
    limits = (
        f"a rate below {1 - TOLERANCE:.2f}x or a latency or CPU per operation above"
        f" {1 / (1 - TOLERANCE):.2f}x"
    )
    text += [
        "",
        "rates: higher is better; latencies and CPU per operation: lower is better;"
        " lag: for information",
        f"{regressions} REGRESSION(s): {limits} the old run"
        if regressions
        else f"no regression ({limits} the old run would be one)",
    ]
    return "\n".join(text)
