"""SQL for the ``meta`` key/value table and small schema questions."""

from __future__ import annotations

import os
import sqlite3
from functools import lru_cache


def get_meta(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else default


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))


def database_file(conn: sqlite3.Connection) -> str | None:
    """Path of the connection's main database file ('' or None for in-memory).

    On PostgreSQL: a deterministic per-database path in this node's cache folder
    (:func:`cache_base`), so caches kept beside the file and
    per-database memos work the same on both engines."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        return cache_base(conn.url)
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row else None


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store.dialect import table_exists as pg_table_exists

        return pg_table_exists(conn, name)
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name=?", (name,)).fetchone() is not None


def delete_meta(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM meta WHERE key=?", (key,))


def lock_file(db: object, suffix: str) -> str:
    """The path of a per-database lock file ``<db>.<suffix>``: beside a SQLite file, or beside
    :func:`cache_base` for a PostgreSQL URL (never a folder named after the URL).

    On PostgreSQL such a lock only excludes processes of this node."""
    from paperwire.store.dialect import is_url

    base = cache_base(str(db)) if is_url(db) else str(db)
    return f"{base}.{suffix}"


def cache_base(url: str) -> str:
    """The PostgreSQL store's stand-in for a database file path: caches (tantivy, vectors,
    topic map) go beside it as on SQLite (``<base>.tantivy/``, ``<base>.vectors/``).

    Deterministic per database (host, port, database name), per node: under
    ``$PAPERWIRE_INDEX_DIR`` if set, else the user cache dir (platformdirs). The folder is
    created here; the base file itself never exists.
    """
    return _cache_base(url, os.environ.get("PAPERWIRE_INDEX_DIR") or "")


@lru_cache(maxsize=64)
def _cache_base(url: str, root: str) -> str:
    import hashlib
    import re
    from pathlib import Path

    from paperwire.store.dialect import describe_url

    d = describe_url(url)
    if not root:
        import platformdirs

        root = os.path.join(platformdirs.user_cache_dir("paperwire", appauthor=False), "postgresql")
    key = hashlib.sha1(f"{d['host']}\x1f{d['port']}\x1f{d['database']}".encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(d["database"]))[:40]
    folder = Path(root) / f"{name}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / "store")


def shared_secret_key(db: object, candidate: str) -> str:
    """The instance's generated secret key kept in the store (``meta.secret_key``): the first
    process to ask stores ``candidate``, every later one (any node) reads that one."""
    from paperwire.store.db import connect, transaction

    conn = connect(db)
    try:
        with transaction(conn):
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret_key', ?)", (candidate,))
        return str(conn.execute("SELECT value FROM meta WHERE key='secret_key'").fetchone()[0])
    finally:
        conn.close()
