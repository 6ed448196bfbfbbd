"""Migrated MySQL databases made by copying a template instead of migrating each one.

Migrating a new database steps through every schema version (dozens of DDL statements,
each a table rebuild or an fsync on MariaDB); the contract tests want a fresh migrated
database per test. So each test process migrates one template database per MariaDB
server, with the product's own migrations (whatever they are today), and a fresh
database is the template's tables re-created from ``SHOW CREATE TABLE`` with the rows
the migrations wrote (the schema version), but not the deployment's secrets: the
store's own ``migrate`` then finds nothing to apply and draws a new message key, as on
any first start. Tests of migrating itself use blank databases (store_contract_support).
"""

from __future__ import annotations

import atexit
import re
import threading
import uuid
from typing import Any

# Tables whose rows belong to one deployment, not to the schema: never copied.
_OWN_ROWS = {"secrets"}
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")

_lock = threading.Lock()
_templates: dict[str, str] = {}  # MariaDB server URL -> its template database's name


def _connect(server_url: str) -> Any:
    import MySQLdb

    from ledgerd.store.mysql import MysqlUrl

    parsed = MysqlUrl.parse(f"{server_url}/mysql")
    return MySQLdb.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.user,
        password=parsed.password,
        autocommit=True,
    )


def _template(server_url: str) -> str:
    """The name of the migrated template database on ``server_url``, made once."""
    with _lock:
        name = _templates.get(server_url)
        if name is None:
            from ledgerd.store.mysql import MysqlStore

            name = f"ledgerd_t_template_{uuid.uuid4().hex[:12]}"
            store = MysqlStore(f"{server_url}/{name}")
            try:
                store.migrate()
            finally:
                store.close()
            _templates[server_url] = name
            atexit.register(_drop, server_url, name)
        return name


def _drop(server_url: str, database: str) -> None:
    connection = _connect(server_url)
    try:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        connection.close()


def copy_of_template(server_url: str, database: str) -> str:
    """Create ``database`` on ``server_url`` as a migrated copy of the template (without
    the template's secrets); returns its URL."""
    template = _template(server_url)
    connection = _connect(server_url)
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [template],
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"CREATE DATABASE `{database}`")
        cursor.execute(f"USE `{database}`")
        for table in tables:
            cursor.execute(f"SHOW CREATE TABLE `{template}`.`{table}`")
            create = _AUTO_INCREMENT.sub("", cursor.fetchone()[1])
            cursor.execute(create)
            if table not in _OWN_ROWS:
                cursor.execute(f"INSERT INTO `{table}` SELECT * FROM `{template}`.`{table}`")
    finally:
        connection.close()
    return f"{server_url}/{database}"
