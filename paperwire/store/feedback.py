"""SQL for a reader's feedback, follows, For-you feed tokens and the model's inputs.

Writes run inside the caller's transaction (``paperwire.recommend`` opens it) and the
caller bumps ``user_revs`` in that same transaction (``store.library.bump_user_rev``), so
a cached model keyed on the revision is never stale. Portable SQL only (SQLite and
PostgreSQL): ``ON CONFLICT ... DO NOTHING`` upserts, no engine-specific functions.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

from paperwire.model import utcnow_iso

_CHUNK = 500
KINDS = ("not_interested", "more_like_this")
FOLLOW_KINDS = ("category", "author", "keyword")


def _marks(n: int) -> str:
    return ",".join("?" * n)


# ---------------------------------------------------------------- feedback

def insert_feedback(conn: sqlite3.Connection, user_id: int, rowid: int, kind: str) -> bool:
    """Record feedback; False when it was already there."""
    cur = conn.execute(
        "INSERT INTO feedback (user_id, paper, kind, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, paper, kind) DO NOTHING",
        (user_id, rowid, kind, utcnow_iso()),
    )
    return cur.rowcount > 0


def delete_feedback(conn: sqlite3.Connection, user_id: int, rowid: int, kind: str) -> bool:
    """Undo feedback; False when there was none."""
    cur = conn.execute("DELETE FROM feedback WHERE user_id=? AND paper=? AND kind=?", (user_id, rowid, kind))
    return cur.rowcount > 0


def feedback_rowids(conn: sqlite3.Connection, user_id: int, kind: str) -> list[int]:
    """Papers the user gave this feedback, oldest first."""
    rows = conn.execute("SELECT paper FROM feedback WHERE user_id=? AND kind=? ORDER BY created_at, paper",
                        (user_id, kind)).fetchall()
    return [r[0] for r in rows]


def feedback_rows(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """Every feedback row of a user with the paper's public id (for "download my data")."""
    rows = conn.execute(
        "SELECT f.kind, f.created_at, p.paper_id, p.title FROM feedback f JOIN papers p ON p.id = f.paper "
        "WHERE f.user_id=? ORDER BY f.created_at", (user_id,)).fetchall()
    return [dict(r) for r in rows]


def upvoted_rowids(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """Papers the user upvoted, oldest vote first."""
    rows = conn.execute("SELECT paper FROM votes WHERE user_id=? ORDER BY created_at, paper", (user_id,)).fetchall()
    return [r[0] for r in rows]


# ---------------------------------------------------------------- follows

def insert_follow(conn: sqlite3.Connection, user_id: int, kind: str, value: str, label: str = "") -> bool:
    """Follow a category, author (normalised name) or keyword; False if already followed."""
    cur = conn.execute(
        "INSERT INTO follows (user_id, kind, value, label, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, kind, value) DO NOTHING",
        (user_id, kind, value, label, utcnow_iso()),
    )
    return cur.rowcount > 0


def delete_follow(conn: sqlite3.Connection, user_id: int, kind: str, value: str) -> bool:
    cur = conn.execute("DELETE FROM follows WHERE user_id=? AND kind=? AND value=?", (user_id, kind, value))
    return cur.rowcount > 0


def list_follows(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """The user's follows, oldest first: ``{"kind", "value", "label", "created_at"}``."""
    rows = conn.execute("SELECT kind, value, label, created_at FROM follows WHERE user_id=? "
                        "ORDER BY created_at, kind, value", (user_id,)).fetchall()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- candidates

def latest_feed_date(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT MAX(feed_date) FROM papers WHERE hidden = 0").fetchone()
    return row[0] if row else None


def window_rowids(conn: sqlite3.Connection, since: str | None, until: str | None) -> list[int]:
    """Visible papers listed in ``[since, until]`` (``YYYY-MM-DD``; None = open)."""
    rows = conn.execute(
        "SELECT id FROM papers WHERE hidden = 0 AND feed_date >= ? AND feed_date <= ?",
        (since or "0000-00-00", until or "9999-12-31"),
    ).fetchall()
    return [r[0] for r in rows]


def followed_rowids(conn: sqlite3.Connection, categories: Sequence[str], author_norms: Sequence[str],
                    since: str | None, until: str | None, limit: int) -> dict[int, tuple[str, str]]:
    """Visible papers in the window by followed categories / authors, newest first:
    ``{rowid: (kind, value)}`` naming the first follow that matched (the "why")."""
    out: dict[int, tuple[str, str]] = {}
    lo, hi = since or "0000-00-00", until or "9999-12-31"
    for kind, table, col, values in (("author", "paper_authors", "name_norm", author_norms),
                                     ("category", "paper_categories", "category", categories)):
        values = list(values)
        for i in range(0, len(values), _CHUNK):
            part = values[i : i + _CHUNK]
            rows = conn.execute(
                f"SELECT t.paper, t.{col} FROM {table} t JOIN papers p ON p.id = t.paper "
                f"WHERE t.{col} IN ({_marks(len(part))}) AND p.hidden = 0 AND p.feed_date >= ? AND p.feed_date <= ? "
                "ORDER BY p.feed_date DESC, p.id DESC LIMIT ?",
                (*part, lo, hi, limit),
            ).fetchall()
            for r in rows:
                out.setdefault(r[0], (kind, r[1]))
    return out


def paper_brief(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, dict]:
    """``{rowid: {"paper_id", "title"}}`` (for why lines naming saved papers)."""
    out: dict[int, dict] = {}
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        for r in conn.execute(f"SELECT id, paper_id, title FROM papers WHERE id IN ({_marks(len(part))})", part):
            out[r[0]] = {"paper_id": r[1], "title": r[2]}
    return out


def category_counts(conn: sqlite3.Connection, limit: int = 60) -> list[tuple[str, int]]:
    """The store's categories with their paper counts, biggest first (topic picking)."""
    rows = conn.execute("SELECT category, COUNT(*) AS n FROM paper_categories GROUP BY category "
                        "ORDER BY n DESC, category LIMIT ?", (limit,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def author_label(conn: sqlite3.Connection, name_norm: str) -> str | None:
    """A display spelling of a normalised author name, or None if no paper has it."""
    row = conn.execute("SELECT name FROM paper_authors WHERE name_norm=? LIMIT 1", (name_norm,)).fetchone()
    return row[0] if row else None


def user_id_by_name(conn: sqlite3.Connection, username: str) -> int | None:
    row = conn.execute("SELECT id FROM users WHERE username=?", (username,)).fetchone()
    return row[0] if row else None


def user_email(conn: sqlite3.Connection, user_id: int) -> str | None:
    row = conn.execute("SELECT email FROM users WHERE id=?", (user_id,)).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- feed tokens

def insert_feed_token(conn: sqlite3.Connection, user_id: int, token_hash: str, purpose: str = "foryou") -> None:
    conn.execute("INSERT INTO feed_tokens (token_hash, user_id, purpose, created_at) VALUES (?, ?, ?, ?)",
                 (token_hash, user_id, purpose, utcnow_iso()))


def delete_feed_tokens(conn: sqlite3.Connection, user_id: int, purpose: str = "foryou") -> int:
    cur = conn.execute("DELETE FROM feed_tokens WHERE user_id=? AND purpose=?", (user_id, purpose))
    return cur.rowcount


def feed_token_user(conn: sqlite3.Connection, token_hash: str, purpose: str = "foryou") -> int | None:
    row = conn.execute("SELECT user_id FROM feed_tokens WHERE token_hash=? AND purpose=?",
                       (token_hash, purpose)).fetchone()
    return row[0] if row else None


def has_feed_token(conn: sqlite3.Connection, user_id: int, purpose: str = "foryou") -> bool:
    row = conn.execute("SELECT 1 FROM feed_tokens WHERE user_id=? AND purpose=? LIMIT 1", (user_id, purpose)).fetchone()
    return row is not None


def vote_state(conn: sqlite3.Connection, user_id: int) -> tuple[int, str]:
    """(number of votes, newest vote time) of a user: part of the cached model's key, since
    votes are written by the web area without bumping ``user_revs``."""
    row = conn.execute("SELECT COUNT(*), MAX(created_at) FROM votes WHERE user_id=?", (user_id,)).fetchone()
    return (int(row[0]), row[1] or "") if row else (0, "")


def paper_texts(conn: sqlite3.Connection, rowids: Sequence[int]) -> list[tuple[str, str]]:
    """(title, abstract) of the given papers, in the given order (missing ones skipped)."""
    got: dict[int, tuple[str, str]] = {}
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        for r in conn.execute(f"SELECT id, title, abstract FROM papers WHERE id IN ({_marks(len(part))})", part):
            got[r[0]] = (r[1] or "", r[2] or "")
    return [got[r] for r in ids if r in got]


def window_categories(conn: sqlite3.Connection, since: str | None, until: str | None) -> list[tuple[int, str]]:
    """(rowid, category) of every visible paper listed in the window. CROSS JOIN keeps SQLite
    walking the window (feed_date index) first: a big category has far more papers than a window.
    (The join condition sits in WHERE: PostgreSQL takes no ON after CROSS JOIN.)"""
    rows = conn.execute(
        "SELECT t.paper, t.category FROM papers p CROSS JOIN paper_categories t "
        "WHERE t.paper = p.id AND p.hidden = 0 AND p.feed_date >= ? AND p.feed_date <= ?",
        (since or "0000-00-00", until or "9999-12-31"),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]
