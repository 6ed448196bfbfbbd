"""Run or replay simulation seeds: ``PYTHONPATH=src:tests python -m sim.run --seed 1234 [--trace]``.

``--seeds N`` runs seeds from ``--seed`` on; ``--switch NAME`` (``SWITCHES``) brings back an
old mechanism (``sim.old``). Exits 1 if any seed fails, printing its seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from sim.world import Config, Result, run_seed

_R2_SCENARIO = {"api_processes": 1, "api_kills": False, "clients_per_api": 6, "feed_lost": 0.3}
# FLUSH needs a write in flight across a FLUSHDB on a contended account (a write-back on a
# slow link, or a full sync's page) and a lease back soon after: frequent FLUSHDBs and slow
# links, two accounts, and a leader that renews every 0.1 s. Its control (no switch) passes.
_FLUSH_SCENARIO = {
    "users": 2,
    "currencies": ("A",),
    "clients_per_api": 3,
    "fault_interval_s": 0.15,
    "faults": (("flush", 0.5), ("slow", 0.5)),
    "slow_link_extra_s": (0.1, 0.45),
    "readiness_check_interval_s": 0.1,
}
SWITCHES: dict[str, dict[str, object]] = {
    "none": {},
    "r1": {"r1_unfenced_answers": True},
    # R2 is a race inside one process: one API process (so R1 cannot fail the run), never
    # killed, with more concurrent clients, and a lossy cache feed so that Redis still
    # holds the older version when the replay races a read.
    "r2": {**_R2_SCENARIO, "r2_unwritten_buffer": True},
    "r2-control": {
        **_R2_SCENARIO,
        "r2_unwritten_buffer": True,
        "r2_buffer_kept_until_landed": True,
    },
    "r4": {"r4_historical_writes_create": True},
    # The lease after a FLUSHDB before 84386f7 (``sim.old``): both halves of the fix undone,
    # or one, in their own scenario.
    "flush": {**_FLUSH_SCENARIO, "flush_renew_unchecked": True, "flush_sync_unmarked": True},
    "flush-renew": {**_FLUSH_SCENARIO, "flush_renew_unchecked": True},
    "flush-sync": {**_FLUSH_SCENARIO, "flush_sync_unmarked": True},
    "flush-control": _FLUSH_SCENARIO,
}


def config_for(switch: str) -> Config:
    return dataclasses.replace(Config(), **SWITCHES[switch])  # type: ignore[arg-type]


def describe(result: Result) -> str:
    lines = [f"seed {result.seed}: {'ok' if result.ok else 'FAILED'}"]
    if result.crash:
        lines.append(result.crash)
    lines += [f"  violation: {v}" for v in result.violations[:10]]
    lines.append(
        f"  reads {result.reads}, applied answers {result.applied_answers},"
        f" faults {result.faults}, trace digest {result.digest()}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--switch", choices=sorted(SWITCHES), default="none")
    parser.add_argument("--trace", action="store_true", help="print the failing seed's schedule")
    args = parser.parse_args(argv)
    config = config_for(args.switch)
    failed = 0
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.seeds):
        result = run_seed(seed, config)
        if not result.ok or args.seeds == 1:
            print(describe(result))
            if args.trace:
                print("\n".join(result.trace))
        failed += not result.ok
    elapsed = time.perf_counter() - started
    print(f"{args.seeds} seeds, {failed} failed, {elapsed:.1f} s ({args.switch})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
