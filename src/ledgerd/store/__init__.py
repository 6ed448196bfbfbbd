"""The store: outbox rows, balances, journal, partition offsets, leader locks."""

from __future__ import annotations

from pathlib import Path

from ledgerd.errors import MissingExtra
from ledgerd.store.base import Store
from ledgerd.store.sql.core import SqlStore

# The module the ``mysql`` extra (mysqlclient) provides.
MYSQL_DRIVER_MODULE = "MySQLdb"


def open_store(
    url: str,
    *,
    connect_timeout_s: float = 30.0,
    pool_size: int = 15,
    queue_limit: int = 100,
    mysql_load_data: bool = False,
) -> SqlStore:
    """Open the store a URL names: ``sqlite:///path`` or ``mysql://user:pass@host:port/db``.

    Raises:
        ValueError: the URL's scheme is not a known store.
        MissingExtra: a mysql:// URL without the ``mysql`` extra (its driver) installed.
    """
    if url.startswith("sqlite:///"):
        from ledgerd.store.sqlite import SqliteStore

        return SqliteStore(Path(url.removeprefix("sqlite:///")), busy_timeout_s=connect_timeout_s)
    if url.startswith("mysql://"):
        try:
            from ledgerd.store.mysql import MysqlStore
        except ModuleNotFoundError as exc:
            if exc.name != MYSQL_DRIVER_MODULE:
                raise
            # The driver is optional (it needs a C toolchain): say which extra brings it.
            raise MissingExtra(
                "mysql", "a mysql:// store URL", "the MySQL driver (mysqlclient)"
            ) from None

        return MysqlStore(
            url,
            pool_size=pool_size,
            queue_limit=queue_limit,
            connect_timeout_s=connect_timeout_s,
            load_data=mysql_load_data,
        )
    raise ValueError(
        f"unknown store URL scheme in {url.split('://', maxsplit=1)[0]!r}; use sqlite:/// or mysql://"
    )


__all__ = ["Store", "open_store"]
