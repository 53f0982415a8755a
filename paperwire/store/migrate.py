"""Migrations as small named steps.

Each module in ``paperwire.store.migrations`` named ``mNNNN_<what>.py`` holds one
step: a ``SQL`` script or an ``apply(conn)`` function. Steps run once, in name
order, each in its own transaction, and are recorded in ``_migrations``.
Number ranges by area keep parallel work apart: 0000 engine compatibility,
0001-0099 core, 0100-0199 search and embeddings, 0200-0299 web and accounts,
0300-0399 digests, 0400-0499 harvesting, 0500-0599 library and For you,
0600-0699 topic map, 0700-0749 discussions.

On PostgreSQL the same steps run: each ``SQL`` statement goes through
:func:`paperwire.store.dialect.translate_ddl` (SQLite-only objects such as FTS5 tables
are skipped), and the whole run holds an advisory lock, so nodes starting together
migrate once.
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from datetime import datetime, timezone

from paperwire.store.dialect import is_postgres, translate_ddl

_PG_LOCK = 7_041_803_913  # advisory lock key: "migrations of this database"


def available_migrations() -> list[str]:
    """Names of all migration steps shipped with the package, in order."""
    from paperwire.store import migrations

    names = [m.name for m in pkgutil.iter_modules(migrations.__path__) if m.name.startswith("m")]
    return sorted(names)


def applied_migrations(conn: sqlite3.Connection) -> set[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    return {r[0] for r in conn.execute("SELECT name FROM _migrations")}


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending step; returns the names applied."""
    if not is_postgres(conn):
        return _migrate(conn)
    conn.execute("SELECT pg_advisory_lock(?)", (_PG_LOCK,))
    try:
        return _migrate(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (_PG_LOCK,))


def _migrate(conn: sqlite3.Connection) -> list[str]:
    pg = is_postgres(conn)
    done = applied_migrations(conn)
    ran = []
    for name in available_migrations():
        if name in done:
            continue
        module = importlib.import_module(f"paperwire.store.migrations.{name}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("SELECT 1 FROM _migrations WHERE name=?", (name,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            if hasattr(module, "apply"):
                module.apply(conn)
            else:
                for statement in _split_sql(module.SQL):
                    if pg:
                        statement = translate_ddl(statement)
                        if statement is None:
                            continue
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran


def _split_sql(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on complete statements instead.
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
