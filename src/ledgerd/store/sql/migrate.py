"""Apply the missing migrations and record each in ``schema_version``.

The table holds one row per applied step, as the store always recorded it, so
databases created before the steps were numbered upgrade in place. Databases
older still (no version table) take step 1 as if new: it only creates what is
missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledgerd.errors import SchemaTooNew
from ledgerd.store.sql.dialect import Dialect, Session
from ledgerd.store.sql.schema import MIGRATIONS, Migration

VERSION_TABLE = "schema_version"


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """The schema version before and after a migration."""

    before: int
    after: int


def recorded_version(session: Session) -> int:
    (row,) = session.query(f"SELECT MAX(version) FROM {VERSION_TABLE}")
    return int(row[0] or 0)


def pending(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The steps after ``current``, in order.

    Raises:
        SchemaTooNew: the database records a step these migrations do not know.
    """
    known = migrations[-1].version if migrations else 0
    if current > known:
        raise SchemaTooNew(current, known)
    return [m for m in migrations if m.version > current]


def migrate(dialect: Dialect, migrations: Sequence[Migration] = MIGRATIONS) -> SchemaChange:
    """Apply what is missing; two processes starting at once take turns.

    Raises:
        SchemaTooNew: the database was migrated by a newer ledgerd; nothing changed.
    """
    with dialect.exclusive() as session:
        session.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
        before = recorded_version(session)
        steps = pending(migrations, before)
        for step in steps:
            for statement in step.statements(dialect.name):
                session.execute(statement)
            session.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)", [step.version])
    return SchemaChange(before, steps[-1].version if steps else before)


def current_version(dialect: Dialect) -> int:
    """The recorded version; 0 for a database (or version table) not created yet."""
    if not dialect.database_exists():
        return 0
    with dialect.autocommit() as session:
        if not session.query(dialect.table_exists_sql, [VERSION_TABLE]):
            return 0
        return recorded_version(session)
