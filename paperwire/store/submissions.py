"""SQL for the submission queue (web submits, the harvester drains)."""

from __future__ import annotations

import sqlite3

from paperwire.model import utcnow_iso
from paperwire.store.papers import row_to_paper


def find_known_paper(conn: sqlite3.Connection, arxiv_id: str) -> dict | None:
    """The stored paper (hidden ones too) with this versionless arXiv id: as its arXiv id,
    its public id, or an alias (with or without a version suffix); None if there is none."""
    row = conn.execute(
        "SELECT * FROM papers WHERE arxiv_id = ? OR paper_id = ? ORDER BY hidden, id LIMIT 1", (arxiv_id, arxiv_id)
    ).fetchone()
    if row is None:
        pattern = arxiv_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "v%"
        row = conn.execute(
            "SELECT p.* FROM paper_aliases a JOIN papers p ON p.id = a.paper "
            "WHERE a.alias = ? OR a.alias LIKE ? ESCAPE '\\' ORDER BY p.hidden, p.id LIMIT 1",
            (arxiv_id, pattern),
        ).fetchone()
    return row_to_paper(row) if row else None


def queue_submission(conn: sqlite3.Connection, arxiv_id: str, user_id: int | None) -> int:
    """Queue an arXiv id for fetching; an id already queued is not queued twice. Returns its row id."""
    now = utcnow_iso()
    row = conn.execute(
        "SELECT id FROM submissions WHERE arxiv_id=? AND status='queued'", (arxiv_id,)
    ).fetchone()
    if row:
        return row[0]
    cur = conn.execute(
        "INSERT INTO submissions (arxiv_id, user_id, status, created_at, updated_at) VALUES (?,?, 'queued', ?, ?)",
        (arxiv_id, user_id, now, now),
    )
    return cur.lastrowid


def pending_submissions(conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
    rows = conn.execute(
        "SELECT * FROM submissions WHERE status='queued' ORDER BY id LIMIT ?", (limit,)
    ).fetchall()
    return [dict(r) for r in rows]


def mark_submission(conn: sqlite3.Connection, submission_id: int, status: str, error: str | None = None) -> None:
    conn.execute(
        "UPDATE submissions SET status=?, error=?, updated_at=? WHERE id=?",
        (status, error, utcnow_iso(), submission_id),
    )
