"""One SQL store for every engine: statements and the write plan in ``core``,
what an engine forces in a small ``Dialect`` (SQLite, MySQL/MariaDB)."""
