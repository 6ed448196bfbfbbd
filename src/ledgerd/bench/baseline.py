"""The design a team would otherwise build: one locking transaction per change.

Each change: BEGIN; SELECT … FOR UPDATE the balance row; apply the rule;
UPDATE the row; INSERT the journal entry; COMMIT. Several threads, on the
same MariaDB and workload as ledgerd.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import Any

from ledgerd.bench.driver import Measurement
from ledgerd.bench.workload import OP_MIX, Accounts
from ledgerd.domain.amounts import format_amount, parse_decimal
from ledgerd.domain.model import Balance, ChangeRequest, ChangeType
from ledgerd.domain.rules import Applied, apply_change


def balances_table(name: str) -> str:
    """The row-per-account balance table ledgerd kept until schema 14: the row this
    design locks (and scripts/measure-journal-write's bookkeeping)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {name} ("
        " user_id BIGINT UNSIGNED NOT NULL,"
        " currency VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " available DECIMAL(38,18) NOT NULL, frozen DECIMAL(38,18) NOT NULL,"
        " version BIGINT UNSIGNED NOT NULL, PRIMARY KEY (user_id, currency)) ENGINE=InnoDB"
    )


def run_baseline(
    url: str, accounts: Accounts, *, threads: int = 8, duration_s: float = 10.0
) -> Measurement:
    """Changes per second of the row-locking design (ledgerd's journal, its own balance rows)."""
    import MySQLdb

    from ledgerd.store.mysql import MysqlStore, MysqlUrl

    MysqlStore(url).migrate()
    parsed = MysqlUrl.parse(url)
    with contextlib.closing(MySQLdb.connect(
        host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password,
        database=parsed.database, autocommit=True,
    )) as setup:  # fmt: skip
        setup.cursor().execute(balances_table("baseline_balances"))
    measured = Measurement()
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def worker(index: int) -> None:
        connection: Any = MySQLdb.connect(
            host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password,
            database=parsed.database, autocommit=False,
        )  # fmt: skip
        cursor = connection.cursor()
        rng = random.Random(index)
        done, latencies = 0, []
        serial = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            user = accounts.pick(rng)
            serial += 1
            change = ChangeRequest(
                f"base-{index}-{serial}", user, "USD", ChangeType(rng.choice(OP_MIX)),
                parse_decimal(f"{rng.randint(1, 100)}.{rng.randint(0, 99):02d}"),
            )  # fmt: skip
            try:
                cursor.execute(
                    "INSERT IGNORE INTO baseline_balances"
                    " (user_id, currency, available, frozen, version) VALUES (%s, 'USD', 0, 0, 0)",
                    (user,),
                )
                cursor.execute(
                    "SELECT available, frozen, version FROM baseline_balances"
                    " WHERE user_id = %s AND currency = 'USD' FOR UPDATE",
                    (user,),
                )
                available, frozen, version = cursor.fetchone()
                before = Balance(
                    user,
                    "USD",
                    parse_decimal(f"{available:f}"),
                    parse_decimal(f"{frozen:f}"),
                    version,
                )
                result = apply_change(before, change)
                if isinstance(result, Applied):
                    after = result.balance
                    cursor.execute(
                        "UPDATE baseline_balances SET available = %s, frozen = %s, version = %s"
                        " WHERE user_id = %s AND currency = 'USD'",
                        (
                            format_amount(after.available),
                            format_amount(after.frozen),
                            after.version,
                            user,
                        ),
                    )
                    cursor.execute(
                        "INSERT INTO journal (request_id, user_id, currency, type, amount,"
                        " available_after, frozen_after, version, applied_at_ms, memo)"
                        " VALUES (%s, %s, 'USD', %s, %s, %s, %s, %s, %s, '')",
                        (change.request_id, user, int(change.type), format_amount(change.amount),
                         format_amount(after.available), format_amount(after.frozen),
                         after.version, int(time.time() * 1000)),
                    )  # fmt: skip
                connection.commit()
            except MySQLdb.OperationalError as exc:
                connection.rollback()
                with lock:
                    measured.errors[f"mysql {exc.args[0]}"] += 1
                continue
            done += 1
            latencies.append(time.perf_counter() - started)
        connection.close()
        with lock:
            measured.operations += done
            measured.calls += done
            measured.latencies_s += latencies

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    measured.elapsed_s = time.monotonic() - started
    return measured
