"""baseline-sql: plain SQL changes straight into MariaDB (bench.baseline), no ledgerd server:
what the database alone allows."""

from __future__ import annotations

from ledgerd.bench.baseline import run_baseline
from ledgerd.bench.cpu import CpuMeter
from ledgerd.bench.scenarios.common import Options, Ran
from ledgerd.bench.workload import Accounts, ChangeFactory
from ledgerd.launch.serve_process import fresh_database_url


def run(options: Options, accounts: Accounts, _: ChangeFactory, meter: CpuMeter) -> Ran:
    # A database of its own (made by the migration); the benchmark never drops databases.
    url = fresh_database_url()
    # The client does the work here (in this process, not counted): MariaDB's share only.
    meter.start()
    measured = run_baseline(url, accounts, threads=8, duration_s=options.duration_s)
    meter.stop(measured.operations)
    return Ran(measured)
