"""Store connections: SQLite (WAL, foreign keys) or PostgreSQL (a ``postgresql://`` URL,
see :mod:`paperwire.store.dialect`), explicit transactions on both."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

from paperwire.store import dialect, statememo
from paperwire.store.dialect import StoreUnavailable, is_postgres, is_url
from paperwire.store.migrate import migrate

__all__ = ["connect", "transaction", "StoreUnavailable", "is_postgres", "is_url"]


def connect(path: str | Path, *, migrate_schema: bool = True, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date.

    ``path`` is a SQLite file, or a ``postgresql://`` / ``postgres://`` URL: then the
    connection is a :class:`paperwire.store.dialect.PgConnection` from a per-process
    pool, and :class:`StoreUnavailable` (one line, no password) says why it cannot be
    opened. The connection is in autocommit mode: group writes with :func:`transaction`.
    """
    if is_url(path):
        conn = dialect.connect_url(str(path))
        if migrate_schema:
            try:
                if migrate(conn):
                    dialect.refresh_schema(conn)
            except BaseException:
                conn.close()
                raise
        return conn
    if isinstance(path, str) and "://" in path:
        # Never again a folder named "mysql:" with a SQLite file in it.
        raise StoreUnavailable(f"unsupported database URL {path.split('://')[0]}://...: "
                               "give a SQLite file path or a postgresql:// URL")
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=check_same_thread)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode (only an OS crash can
    # lose the last commits), which is what the crash-safety guarantees need.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
    if migrate_schema:
        migrate(conn)
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolling back on any exception.

    Nested use joins the outer transaction (SQLite has no nested BEGIN), so a
    caller can wrap a whole import in one transaction for ``--strict``.
    """
    statememo.forget(conn)  # a write ahead: this connection's reads go to the store again
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextlib.contextmanager
def page_cache(conn: sqlite3.Connection, kib: int) -> Iterator[sqlite3.Connection]:
    """Use a page cache of ``kib`` KiB for the duration of a bulk job, then restore it."""
    if is_postgres(conn):  # the server sizes its own buffers
        yield conn
        return
    previous = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size=-{int(kib)}")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA cache_size={int(previous)}")


@contextlib.contextmanager
def temp_files(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Spill sorts and temporary tables to files, not memory, for a bulk job (index builds).

    :func:`connect` keeps temporary storage in memory, which suits small sorts; an index
    built over a whole table would grow the process by the index size. The setting
    cannot change inside a transaction; there it is left as it is.
    """
    if conn.in_transaction or is_postgres(conn):
        yield conn
        return
    previous = conn.execute("PRAGMA temp_store").fetchone()[0]
    conn.execute("PRAGMA temp_store=FILE")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA temp_store={int(previous)}")
