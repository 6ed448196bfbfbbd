"""The harness's migrated databases (copies of a template, harness.templates) are what
migrating a new database makes, so the contract tests that use them test the real schema."""

from __future__ import annotations

from typing import Any

from harness import drop_database, fresh_database_url, migrated_database_url

from ledgerd.store.mysql import MysqlStore


def _schema_and_rows(url: str) -> dict[str, tuple[str, list[Any]]]:
    """Each table's definition (its own name aside) and rows, secrets' values aside."""
    import MySQLdb

    from ledgerd.store.mysql import MysqlUrl

    parsed = MysqlUrl.parse(url)
    connection = MySQLdb.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.user,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        cursor = connection.cursor()
        cursor.execute("SHOW FULL TABLES")
        tables = sorted((name, kind) for name, kind in cursor.fetchall())
        found = {}
        for table, kind in tables:
            cursor.execute(f"SHOW CREATE TABLE `{table}`")
            definition = cursor.fetchone()[1]
            columns = "name" if table == "secrets" else "*"
            cursor.execute(f"SELECT {columns} FROM `{table}`")
            found[f"{table} ({kind})"] = (definition, sorted(cursor.fetchall()))
        return found
    finally:
        connection.close()


def test_a_copy_of_the_template_is_a_migrated_database() -> None:
    """Same tables, definitions and rows (the schema versions, a message key) as a new
    database the store migrated through every step."""
    migrated_url, copied_url = fresh_database_url(), migrated_database_url()
    try:
        for url in (migrated_url, copied_url):
            store = MysqlStore(url)
            try:
                store.migrate()
            finally:
                store.close()
        migrated, copied = _schema_and_rows(migrated_url), _schema_and_rows(copied_url)
        assert copied == migrated
        assert any(name.startswith("secrets") for name in migrated)
    finally:
        drop_database(migrated_url)
        drop_database(copied_url)
