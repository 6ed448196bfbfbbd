"""A journal with history, written straight into MariaDB: the apply-large scenario's
starting point (a journal that outgrew an empty table's costs).

The rows go in with multi-row INSERTs, not through the pipeline: millions of changes
through the API would take longer than the measurement. They are a consistent history the
audit accepts: each of the bench's accounts (users 1..accounts, USD) gets its share of
the rows as DEPOSITs of 1, versions 1..n (its balance, the newest entry's: n at version
n). Their request ids run in insertion order, like the time-ordered ids of a real client.
They carry no event position (event_seq 0, as entries journaled before schema 5), so the
event publisher leaves them alone.

Only the columns without a default are named, so columns added later with defaults do
not break the prefill; a new key shape that needs more must be taught here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ledgerd.domain.model import ChangeType

ROWS_PER_STATEMENT = 10_000
PREFIX = "prefill-"


def rows_per_account(rows: int, accounts: int) -> Iterator[tuple[int, int]]:
    """(user_id, journal rows) for users 1..accounts sharing ``rows`` (the first users one
    more each when the division leaves a remainder); users with none are left out."""
    share, extra = divmod(rows, accounts)
    for user in range(1, accounts + 1):
        count = share + (user <= extra)
        if count:
            yield user, count


def journal_values(rows: int, accounts: int, applied_at_ms: int) -> Iterator[str]:
    """The VALUES tuple of each journal row, in key order (user, version)."""
    deposit = int(ChangeType.DEPOSIT)
    serial = 0
    for user, count in rows_per_account(rows, accounts):
        for version in range(1, count + 1):
            yield (
                f"({user},'USD',{version},'{PREFIX}{serial:012d}',{deposit},1,{version},0,"
                f"{applied_at_ms},'')"
            )
            serial += 1


def _chunks(values: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prefill(
    store_url: str,
    rows: int,
    accounts: int,
    *,
    progress: Callable[[int], None] = lambda _: None,
    rows_per_statement: int = ROWS_PER_STATEMENT,
) -> int:
    """Write ``rows`` journal entries into the migrated, empty MySQL store at
    ``store_url``; returns the rows written."""
    import MySQLdb

    from ledgerd.store.sql.mysql_dialect import MysqlUrl

    if not store_url.startswith("mysql://"):
        raise ValueError("apply-large prefills a MySQL/MariaDB journal: use --stack production")
    parsed = MysqlUrl.parse(store_url)
    connection: Any = MySQLdb.connect(
        host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password,
        database=parsed.database, autocommit=True,
    )  # fmt: skip
    try:
        cursor = connection.cursor()
        # The rows are unique by construction: let InnoDB skip the unique checks' reads.
        cursor.execute("SET SESSION unique_checks = 0")
        written = 0
        now_ms = int(time.time() * 1000)
        for chunk in _chunks(journal_values(rows, accounts, now_ms), rows_per_statement):
            cursor.execute(
                "INSERT INTO journal (user_id, currency, version, request_id, type, amount,"
                " available_after, frozen_after, applied_at_ms, memo) VALUES " + ",".join(chunk)
            )
            written += len(chunk)
            progress(written)
        return written
    finally:
        connection.close()
