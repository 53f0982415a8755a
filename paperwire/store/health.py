"""The store-side facts behind ``/readyz`` and ``/metrics`` (:mod:`paperwire.web.ops`), and
:func:`store_down_reason`: which errors mean "the store is down or busy" (503, retry) rather than a bug.

Each function is one or two small queries, written for both engines. Jobs are read from
``worker_jobs`` as they are: the lease columns (``owner``, ``lease_until``, migration
m0800) are used when present, so this works on a store before and after that step.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timezone

from paperwire.store import search as sql
from paperwire.store.dialect import StoreUnavailable

# SQLite errors that mean "busy or unreachable" (a retry helps), not a bug.
_SQLITE_BUSY = ("locked", "busy", "unable to open database file", "disk i/o error")


def store_rev(conn: sqlite3.Connection) -> int:
    """The store revision (``meta.rev``); also the cheapest proof the store answers."""
    return sql.store_rev(conn)


def lexical_rev(conn: sqlite3.Connection) -> int:
    """The revision the store's lexical index (FTS5 on SQLite, the search tables on
    PostgreSQL) was last brought up to by ``paperwire index`` or a worker."""
    return int(sql.get_state(conn, "lexical_rev", "0") or 0)


def _columns(conn: sqlite3.Connection, table: str) -> set[str] | None:
    """The column names of ``table`` (None when it does not exist), on both engines."""
    from paperwire.store.meta import table_exists

    if not table_exists(conn, table):
        return None
    cur = conn.execute(f"SELECT * FROM {table} WHERE 1 = 0")
    return {d[0] for d in cur.description or ()}


def job_counts(conn: sqlite3.Connection, now: str | None = None) -> dict:
    """``{"states": {(job, state): n}, "leased": {job: n}, "expired": {job: n}}`` from
    ``worker_jobs``. ``leased``: running rows whose lease still holds; ``expired``: running
    rows whose lease ran out (a worker died or hangs; another will take the job over).
    Both are empty on a store without lease columns. No table: all empty."""
    out: dict = {"states": {}, "leased": {}, "expired": {}}
    cols = _columns(conn, "worker_jobs")
    if cols is None:
        return out
    for job, state, n in conn.execute(
            "SELECT job, state, COUNT(*) FROM worker_jobs GROUP BY job, state ORDER BY job, state").fetchall():
        out["states"][(str(job), str(state))] = int(n)
    if "lease_until" in cols:
        now = now or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = conn.execute(
            "SELECT job, SUM(CASE WHEN lease_until >= ? THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN lease_until < ? THEN 1 ELSE 0 END) FROM worker_jobs "
            "WHERE state = 'running' AND lease_until IS NOT NULL GROUP BY job ORDER BY job", (now, now)).fetchall()
        for job, live, expired in rows:
            out["leased"][str(job)] = int(live or 0)
            out["expired"][str(job)] = int(expired or 0)
    return out


def marked_down(db_path: str) -> bool:
    """Whether this process's last attempt to open a connection to the PostgreSQL store at
    ``db_path`` failed and none has succeeded since (always False for SQLite). A good answer
    while this holds came from a connection or a cache that predates the outage: it does
    not prove the store is back."""
    from paperwire.store import dialect

    if not dialect.is_url(db_path):
        return False
    from paperwire.store import pgpool

    return pgpool.is_down(db_path)


def store_down_reason(exc: BaseException, _depth: int = 0) -> str | None:
    """One line saying why the store could not answer, if ``exc`` means it is unreachable
    or busy (a 503 and a retry help); None for any other error (a bug: 500)."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        return f"SQLite: {text}" if any(w in text.lower() for w in _SQLITE_BUSY) else None
    pg = sys.modules.get("psycopg")
    if pg is not None and isinstance(exc, (pg.OperationalError, pg.InterfaceError)):
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"PostgreSQL: {type(exc).__name__}: {first[:300]}"
    if _depth < 4:
        inner = getattr(exc, "exceptions", None)  # an exception group from a task group
        for e in (inner if isinstance(inner, (list, tuple)) else ()):
            if (reason := store_down_reason(e, _depth + 1)) is not None:
                return reason
        for e in (exc.__cause__, exc.__context__):
            if e is not None and (reason := store_down_reason(e, _depth + 1)) is not None:
                return reason
    return None
