"""The production store: the SQL core on MySQL 8 / MariaDB 10.11+ (see ``sql/mysql_dialect``)."""

from __future__ import annotations

from collections.abc import Callable

from ledgerd.store.sql.core import SqlStore
from ledgerd.store.sql.mysql_dialect import MysqlDialect, MysqlUrl
from ledgerd.store.sql.statements import ROWS_PER_STATEMENT


class MysqlStore(SqlStore):
    """The Store interface on MySQL/MariaDB."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 15,
        queue_limit: int = 100,
        connect_timeout_s: float = 30.0,
        load_data: bool = False,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        dialect = MysqlDialect(
            url,
            pool_size=pool_size,
            queue_limit=queue_limit,
            connect_timeout_s=connect_timeout_s,
            load_data=load_data,
        )
        super().__init__(dialect, clock_ms=clock_ms)


__all__ = ["ROWS_PER_STATEMENT", "MysqlStore", "MysqlUrl"]
