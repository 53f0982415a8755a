"""SQL for harvesting: the OAI-PMH cursor of each list, deletions, freshness checks.

The cursor is written in the same transaction as the records of the page that
produced it (see :mod:`paperwire.harvest`), so the stored cursor always
describes exactly what the store holds.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable

from paperwire.model import utcnow_iso
from paperwire.store import papers as papers_sql

_CHUNK = 500


def job_key(base_url: str, metadata_prefix: str, set_spec: str | None) -> str:
    """The identity of one harvested list."""
    return f"{base_url}|{metadata_prefix}|{set_spec or ''}"


def get_state(conn: sqlite3.Connection, job: str) -> dict | None:
    """The cursor row of ``job`` as a dict, or None before its first run."""
    row = conn.execute("SELECT * FROM harvest_state WHERE job=?", (job,)).fetchone()
    return dict(row) if row else None


def all_states(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT * FROM harvest_state ORDER BY job")]


def start_run(conn: sqlite3.Connection, job: str, base_url: str, metadata_prefix: str, set_spec: str | None,
              from_date: str | None, until: str | None) -> None:
    """Begin a run (from its first page): forget any old token, keep ``last_datestamp``."""
    now = utcnow_iso()
    conn.execute(
        """INSERT INTO harvest_state (job, base_url, metadata_prefix, set_spec, run_status, run_from, run_until,
                                      run_token, run_max_datestamp, run_pages, run_records, run_started_at,
                                      last_error, updated_at)
           VALUES (?, ?, ?, ?, 'running', ?, ?, NULL, NULL, 0, 0, ?, NULL, ?)
           ON CONFLICT(job) DO UPDATE SET run_status='running', run_from=excluded.run_from,
               run_until=excluded.run_until, run_token=NULL, run_max_datestamp=NULL, run_pages=0,
               run_records=0, run_started_at=excluded.run_started_at, last_error=NULL,
               updated_at=excluded.updated_at""",
        (job, base_url, metadata_prefix, set_spec or "", from_date, until, now, now),
    )


def save_page(conn: sqlite3.Connection, job: str, *, token: str | None, max_datestamp: str | None,
              records: int) -> None:
    """Record a committed page: the token of the next page and the newest datestamp so far.

    Call inside the transaction that wrote the page's records.
    """
    conn.execute(
        """UPDATE harvest_state SET run_token=?, run_pages=run_pages+1, run_records=run_records+?,
               run_max_datestamp=CASE WHEN ? IS NOT NULL AND (run_max_datestamp IS NULL OR ? > run_max_datestamp)
                                      THEN ? ELSE run_max_datestamp END,
               updated_at=?
           WHERE job=?""",
        (token, records, max_datestamp, max_datestamp, max_datestamp, utcnow_iso(), job),
    )


def finish_run(conn: sqlite3.Connection, job: str) -> None:
    """The list is complete: advance ``last_datestamp`` (never backwards) and go idle."""
    now = utcnow_iso()
    conn.execute(
        """UPDATE harvest_state SET
               last_datestamp=CASE WHEN run_max_datestamp IS NOT NULL
                                        AND (last_datestamp IS NULL OR run_max_datestamp > last_datestamp)
                                   THEN run_max_datestamp ELSE last_datestamp END,
               last_completed_at=?, run_status='idle', run_token=NULL, updated_at=?
           WHERE job=?""",
        (now, now, job),
    )


def set_error(conn: sqlite3.Connection, job: str, error: str) -> None:
    """Note the last failure; the cursor itself is left alone."""
    conn.execute("UPDATE harvest_state SET last_error=?, updated_at=? WHERE job=?", (error[:2000], utcnow_iso(), job))


def stored_versions(conn: sqlite3.Connection, arxiv_ids: Iterable[str]) -> dict[str, tuple[int | None, str | None]]:
    """``{arxiv_id: (version, updated)}`` of the papers already stored among ``arxiv_ids``."""
    ids = list(dict.fromkeys(arxiv_ids))
    out: dict[str, tuple[int | None, str | None]] = {}
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        q = f"SELECT arxiv_id, version, updated FROM papers WHERE arxiv_id IN ({','.join('?' * len(part))})"
        for r in conn.execute(q, part):
            out[r[0]] = (r[1], r[2])
    return out


def record_deletions(conn: sqlite3.Connection, deleted: Iterable[tuple[str, str | None]]) -> int:
    """Remember records the repository reports as deleted and hide those papers.

    Returns how many stored papers were newly hidden. The store revision is bumped
    so that indexes see the change. Call inside a transaction.
    """
    now = utcnow_iso()
    items = list(deleted)
    if not items:
        return 0
    conn.executemany(
        "INSERT INTO harvest_deletions (arxiv_id, datestamp, seen_at) VALUES (?, ?, ?) "
        "ON CONFLICT(arxiv_id) DO UPDATE SET datestamp=excluded.datestamp, seen_at=excluded.seen_at",
        [(a, d, now) for a, d in items],
    )
    ids = [a for a, _ in items]
    hidden = 0
    rev = None
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        if conn.execute(f"SELECT 1 FROM papers WHERE hidden=0 AND arxiv_id IN ({marks}) LIMIT 1", part).fetchone():
            rev = rev or papers_sql.next_rev(conn)
            hidden += conn.execute(
                f"UPDATE papers SET hidden=1, rev=? WHERE hidden=0 AND arxiv_id IN ({marks})", [rev, *part]
            ).rowcount
    return hidden


def clear_deletions(conn: sqlite3.Connection, arxiv_ids: Iterable[str]) -> int:
    """Records that came back after a deletion: unhide the papers this harvester hid.

    Papers hidden for other reasons (moderation) are left alone. Call inside a transaction.
    """
    ids = list(dict.fromkeys(arxiv_ids))
    restored = 0
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        back = [r[0] for r in conn.execute(f"SELECT arxiv_id FROM harvest_deletions WHERE arxiv_id IN ({marks})", part)]
        if not back:
            continue
        bm = ",".join("?" * len(back))
        rev = papers_sql.next_rev(conn)
        restored += conn.execute(f"UPDATE papers SET hidden=0, rev=? WHERE hidden=1 AND arxiv_id IN ({bm})",
                                 [rev, *back]).rowcount
        conn.execute(f"DELETE FROM harvest_deletions WHERE arxiv_id IN ({bm})", back)
    return restored


def deletion_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM harvest_deletions").fetchone()[0]
