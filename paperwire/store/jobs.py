"""Job rows with leases (``worker_jobs``): the SQL behind :mod:`paperwire.jobs`.

A job is a (job, period) pair: ``digest-daily`` for 2026-12-02, ``sync`` for a day,
``map-build`` for an ISO week, ``index`` (recurring, period ``-``). A worker *claims* a row
by writing its name into ``owner`` and a deadline into ``lease_until``, in one
transaction; it renews the lease while it works and finishes the row as done, failed or
skipped. A row whose lease ran out (its worker died) can be claimed by anyone.

Claims never wait on one another: on PostgreSQL the row is read ``FOR UPDATE SKIP
LOCKED`` (a row another worker is claiming right now is simply not claimable), and
the first claim of a period is an ``INSERT ... ON CONFLICT DO NOTHING``; on SQLite
``BEGIN IMMEDIATE`` serialises the claimers. Times are ISO UTC strings, compared as text.
"""

from __future__ import annotations

import sqlite3

from paperwire.store.db import transaction
from paperwire.store.locks import skip_locked


def claim(conn: sqlite3.Connection, job: str, period: str, owner: str, *, started_at: str, now: str,
          lease_until: str, retry_before: str, recurring: bool = False) -> bool:
    """Claim ``(job, period)`` for ``owner`` until ``lease_until``; True when it is ours.

    Two clocks: ``now`` and ``lease_until`` are wall-clock time (leases); ``started_at`` and
    ``retry_before`` are the scheduler's (which a test or ``worker --now`` may pretend).

    Claimable: a period never started; a row whose lease ran out (``now`` past
    ``lease_until``); a failed row started before ``retry_before``; with ``recurring``
    also a done or skipped row (jobs such as indexing that run again and again under one
    key). A row still leased to someone else, or being claimed at this very moment, is not.
    """
    with transaction(conn):
        cur = conn.execute(
            "INSERT OR IGNORE INTO worker_jobs (job, period, state, attempts, started_at, owner, lease_until) "
            "VALUES (?, ?, 'running', 1, ?, ?, ?)", (job, period, started_at, owner, lease_until))
        if cur.rowcount == 1:
            return True
        row = conn.execute(
            "SELECT state, started_at, owner, lease_until FROM worker_jobs WHERE job=? AND period=?"
            + skip_locked(conn), (job, period)).fetchone()
        if row is None or not _claimable(row, now, retry_before, recurring):
            return False
        conn.execute(
            "UPDATE worker_jobs SET state='running', attempts=attempts+1, started_at=?, finished_at=NULL, "
            "owner=?, lease_until=? WHERE job=? AND period=?", (started_at, owner, lease_until, job, period))
        return True


def _claimable(row, now: str, retry_before: str, recurring: bool) -> bool:
    state, started_at, lease_until = row["state"], row["started_at"], row["lease_until"]
    if state in ("done", "skipped"):
        return recurring
    if state == "running":
        if lease_until is not None:
            return lease_until < now  # its worker stopped renewing: it died or hung
        return started_at < retry_before  # a row from before leases: the old pause rule
    return started_at < retry_before  # failed: after a pause


def renew(conn: sqlite3.Connection, job: str, period: str, owner: str, lease_until: str) -> bool:
    """Extend ``owner``'s lease; False when the row is no longer ours (it ran out and was taken)."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE worker_jobs SET lease_until=? WHERE job=? AND period=? AND owner=? AND state='running'",
            (lease_until, job, period, owner))
        return cur.rowcount == 1


def finish(conn: sqlite3.Connection, job: str, period: str, owner: str, state: str, now: str,
           detail: str = "") -> bool:
    """Record the outcome of ``owner``'s run and drop its lease; False if the row was taken over
    meanwhile (the new owner's run decides the outcome then)."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE worker_jobs SET state=?, finished_at=?, detail=?, lease_until=NULL "
            "WHERE job=? AND period=? AND owner=?", (state, now, detail[:2000], job, period, owner))
        return cur.rowcount == 1


def get(conn: sqlite3.Connection, job: str, period: str) -> dict | None:
    """The row of ``(job, period)`` as a dict, or None."""
    row = conn.execute("SELECT * FROM worker_jobs WHERE job=? AND period=?", (job, period)).fetchone()
    return dict(row) if row else None


def list_jobs(conn: sqlite3.Connection, limit: int = 50) -> list[dict]:
    """The most recently started job rows, newest first (``paperwire worker --status``, /metrics)."""
    rows = conn.execute(
        "SELECT job, period, state, attempts, started_at, finished_at, owner, lease_until, detail "
        "FROM worker_jobs ORDER BY started_at DESC, job LIMIT ?", (limit,)).fetchall()
    return [dict(r) for r in rows]


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many job rows are in each state."""
    return {r[0]: int(r[1]) for r in conn.execute("SELECT state, COUNT(*) FROM worker_jobs GROUP BY state")}
