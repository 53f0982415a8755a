"""SQL for the ``meta`` key/value table and small schema questions."""

from __future__ import annotations

import sqlite3


def get_meta(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else default


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))


def database_file(conn: sqlite3.Connection) -> str | None:
    """Path of the connection's main database file ('' or None for in-memory)."""
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row else None


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store.dialect import table_exists as pg_table_exists

        return pg_table_exists(conn, name)
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name=?", (name,)).fetchone() is not None


def delete_meta(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM meta WHERE key=?", (key,))
