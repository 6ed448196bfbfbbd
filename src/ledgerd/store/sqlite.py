"""The embedded store: the SQL core on one SQLite file (see ``sql/sqlite_dialect``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.sqlite_dialect import SqliteDialect


class SqliteStore(SqlStore):
    """The Store interface on one SQLite database file."""

    def __init__(
        self,
        path: Path,
        busy_timeout_s: float = 30.0,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(SqliteDialect(path, busy_timeout_s), clock_ms=clock_ms)
