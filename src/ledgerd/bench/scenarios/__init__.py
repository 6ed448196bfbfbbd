"""The benchmark scenarios, one module per family; each starts its own servers and returns
one result row. ``run`` looks a scenario up by name (bench.names) and makes its row."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.names import SCENARIOS
from ledgerd.bench.scenarios import (
    apply,
    baseline_sql,
    changes,
    echo,
    events,
    hold,
    memory,
    read,
    transfer,
)
from ledgerd.bench.scenarios.common import Options, Ran, Runner, cpu_meter, stack_env
from ledgerd.bench.workload import Accounts, ChangeFactory

__all__ = ["Options", "Ran", "machine", "run", "stack_env"]

UNITS = {
    "echo": "calls/s",
    "read": "calls/s",
    "memory": "bytes/account",
    "transfer": "transfers/s",
    "events": "events/s",
}

# Scenarios without a CPU figure: memory measures bytes, not work per operation.
WITHOUT_CPU = ("memory",)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        # Other work on the machine when the scenario started (the figures' context).
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def run(options: Options) -> dict[str, Any]:
    """Run one scenario; returns its result (throughput, latencies, audit, parameters)."""
    runners: dict[str, Runner] = {
        "echo": echo.run,
        "change-single": changes.run,
        "change-batch": changes.run,
        "hot": changes.run,
        "read": read.run,
        "apply": apply.run,
        "apply-large": apply.run,
        "baseline-sql": baseline_sql.run,
        "memory": memory.run,
        "transfer": transfer.run,
        "events": events.run,
        "hold": hold.run,
    }
    if options.scenario not in runners:
        raise ValueError(f"unknown scenario {options.scenario!r}; one of {', '.join(SCENARIOS)}")
    options.workdir.mkdir(parents=True, exist_ok=True)
    distribution = "zipf" if options.scenario == "hot" else options.distribution
    accounts = Accounts(options.accounts, distribution)
    meter = CpuMeter() if options.scenario in WITHOUT_CPU else cpu_meter(options)
    ran = runners[options.scenario](options, accounts, ChangeFactory(accounts), meter)
    measured, audited = ran.measured, ran.audit
    return {
        "scenario": options.scenario,
        # API worker processes asked for; baseline-sql runs no ledgerd server.
        "workers": None if options.scenario == "baseline-sql" else options.workers,
        "parameters": {
            "duration_s": options.duration_s,
            "accounts": options.accounts,
            "concurrency": options.concurrency,
            "batch": options.batch,
            "distribution": distribution,
            "stack": options.stack,
            "events": options.events or options.scenario == "events",
            "split_roles": options.split_roles
            and options.stack == "production"
            and options.scenario in ("change-single", "change-batch", "hot", "transfer"),
            **(
                {
                    "consumer_batch": options.consumer_batch,
                    "shards": options.shards,
                    "consumers": options.consumers,
                    "partitions": options.partitions or 3,
                }
                if options.scenario == "apply"
                else {
                    "consumer_batch": options.consumer_batch,
                    "apply_changes": options.apply_changes,
                    "journal_rows": options.journal_rows,
                }
                if options.scenario == "apply-large"
                else {"apply_changes": options.apply_changes}
                if options.scenario == "events"
                else {}
            ),
        },
        "machine": machine(),
        "unit": UNITS.get(options.scenario, "changes/s"),
        "throughput": round(measured.rate, 1),
        "operations": measured.operations,
        "calls": measured.calls,
        "elapsed_s": round(measured.elapsed_s, 2),
        "p50_ms": round(measured.percentile_ms(0.50), 2),
        "p99_ms": round(measured.percentile_ms(0.99), 2),
        "p100_ms": round(measured.percentile_ms(1.0), 2),
        "errors": dict(measured.errors),
        **ran.figures,
        **({"cpu": meter.figures.as_dict()} if meter.figures is not None else {}),
        "audit": audited,
        "ok": not measured.errors
        and (audited is None or audited["ok"])
        and ran.figures.get("settled", True)
        and _all_sampled_applied(ran.figures),
    }


def _all_sampled_applied(figures: dict[str, Any]) -> bool:
    """Whether every transfer looked up after a run was APPLIED ("n/n"), if any was."""
    applied, _, sampled = str(figures.get("sampled_applied", "0/0")).partition("/")
    return applied == sampled
