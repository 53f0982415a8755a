"""SQL for site accounts: users, sessions, votes, rate-limit events, hiding papers.

Password hashing lives in the web layer (argon2); this module stores hashes only.
Every write that changes what a page shows (a vote, hiding a paper) bumps
``meta.web_rev`` in the same transaction, so page caches keyed on
``(rev, web_rev)`` are never stale.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone

from paperwire.model import utcnow_iso
from paperwire.store import statememo
from paperwire.store.db import transaction
from paperwire.store.locks import serialise_transaction


class AccountError(ValueError):
    """A user-facing problem with an account operation (name taken, ...)."""


def _bump_web_rev(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='web_rev'")


def cache_revs(conn: sqlite3.Connection) -> tuple[int, int]:
    """(store rev, web rev): together they change whenever any page could change."""
    rev = statememo.meta_value(conn, "rev")
    if rev is not statememo.MISSING:
        return int(rev or 0), int(statememo.meta_value(conn, "web_rev") or 0)
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('rev', 'web_rev')").fetchall())
    return int(rows.get("rev", 0)), int(rows.get("web_rev", 0))


# ---------------------------------------------------------------- users

def create_user(conn: sqlite3.Connection, username: str, email: str, password_hash: str,
                *, is_admin: bool = False) -> int:
    """Insert a user; raises AccountError when the name or e-mail is taken."""
    try:
        cur = conn.execute(
            "INSERT INTO users (username, email, password_hash, is_admin, created_at) VALUES (?,?,?,?,?)",
            (username, email, password_hash, int(is_admin), utcnow_iso()),
        )
    except sqlite3.IntegrityError as exc:
        field = "e-mail" if "email" in str(exc) else "username"
        raise AccountError(f"that {field} is already taken") from None
    return cur.lastrowid


def get_user(conn: sqlite3.Connection, user_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone()
    return dict(row) if row else None


def find_user(conn: sqlite3.Connection, login: str) -> dict | None:
    """A user by username or e-mail (case-insensitive)."""
    row = conn.execute("SELECT * FROM users WHERE username=? OR email=?", (login, login)).fetchone()
    return dict(row) if row else None


def set_password_hash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash=? WHERE id=?", (password_hash, user_id))


def set_admin(conn: sqlite3.Connection, username: str, is_admin: bool = True) -> bool:
    """Grant or revoke the admin role; False when there is no such user."""
    cur = conn.execute("UPDATE users SET is_admin=? WHERE username=?", (int(is_admin), username))
    return cur.rowcount > 0


def list_users(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT id, username, email, is_admin, created_at FROM users ORDER BY id")]


# ---------------------------------------------------------------- sessions

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(conn: sqlite3.Connection, user_id: int, token: str, *, days: int = 30) -> None:
    now = datetime.now(timezone.utc)
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
        (_token_hash(token), user_id, now.strftime("%Y-%m-%dT%H:%M:%SZ"),
         (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")),
    )


def session_user(conn: sqlite3.Connection, token: str) -> dict | None:
    """The user a live session token belongs to, else None."""
    row = conn.execute(
        "SELECT u.id, u.username, u.email, u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash=? AND s.expires_at > ?",
        (_token_hash(token), utcnow_iso()),
    ).fetchone()
    return dict(row) if row else None


def delete_session(conn: sqlite3.Connection, token: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash=?", (_token_hash(token),))


def purge_expired_sessions(conn: sqlite3.Connection) -> int:
    return conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (utcnow_iso(),)).rowcount


# ---------------------------------------------------------------- rate limits

RATE_KEEP_S = 86400  # no rate window is longer than this

def rate_hit(conn: sqlite3.Connection, key: str, *, limit: int, window_s: float) -> float:
    """Record one attempt under ``key``; returns 0 when allowed, else seconds to wait.

    An attempt over the limit is not recorded, so a client that keeps hammering
    is let back in when the window has passed.
    """
    with transaction(conn):
        serialise_transaction(conn, f"rate:{key}")  # count-then-insert: one attempt at a time per key
        now = time.time()  # read after the wait, so an attempt that queued is not dated early
        conn.execute("DELETE FROM rate_events WHERE key=? AND at < ?", (key, now - window_s))
        if random.random() < 1 / 256:
            # Keys that are never hit again (a guessed user name, an address) would stay
            # forever: now and then drop everything older than the longest window (a day).
            conn.execute("DELETE FROM rate_events WHERE at < ?", (now - RATE_KEEP_S,))
        rows = conn.execute(
            "SELECT at FROM rate_events WHERE key=? ORDER BY at LIMIT ?", (key, limit)
        ).fetchall()
        if len(rows) >= limit:
            return max(1.0, rows[0][0] + window_s - now)
        conn.execute("INSERT INTO rate_events (key, at) VALUES (?, ?)", (key, now))
    return 0.0


def rate_clear(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM rate_events WHERE key=?", (key,))


# ---------------------------------------------------------------- votes

def _paper_rowid(conn: sqlite3.Connection, paper_id: str) -> int | None:
    row = conn.execute("SELECT id FROM papers WHERE paper_id=?", (paper_id,)).fetchone()
    return row[0] if row else None


def set_vote(conn: sqlite3.Connection, user_id: int, paper_rowid: int, up: bool) -> tuple[bool, int]:
    """Upvote (``up``) or take the vote back; idempotent. Returns (voted, total upvotes).

    The vote row and ``papers.local_upvotes`` change in one transaction, so the
    count always equals the number of vote rows.
    """
    with transaction(conn):
        if up:
            cur = conn.execute(
                "INSERT OR IGNORE INTO votes (user_id, paper, created_at) VALUES (?,?,?)",
                (user_id, paper_rowid, utcnow_iso()),
            )
            delta = cur.rowcount
        else:
            cur = conn.execute("DELETE FROM votes WHERE user_id=? AND paper=?", (user_id, paper_rowid))
            delta = -cur.rowcount
        if delta:
            conn.execute("UPDATE papers SET local_upvotes = local_upvotes + ? WHERE id=?", (delta, paper_rowid))
            _bump_web_rev(conn)
        row = conn.execute("SELECT upvotes + local_upvotes FROM papers WHERE id=?", (paper_rowid,)).fetchone()
    return up, int(row[0]) if row else 0


def user_votes(conn: sqlite3.Connection, user_id: int, paper_rowids: list[int]) -> set[int]:
    """Which of the given papers this user has upvoted."""
    if not paper_rowids:
        return set()
    out: set[int] = set()
    for i in range(0, len(paper_rowids), 500):
        part = paper_rowids[i : i + 500]
        out.update(
            r[0] for r in conn.execute(
                f"SELECT paper FROM votes WHERE user_id=? AND paper IN ({','.join('?' * len(part))})",
                (user_id, *part),
            )
        )
    return out


def vote_count(conn: sqlite3.Connection, paper_rowid: int) -> int:
    return conn.execute("SELECT COUNT(*) FROM votes WHERE paper=?", (paper_rowid,)).fetchone()[0]


# ---------------------------------------------------------------- moderation / submissions

def set_hidden(conn: sqlite3.Connection, paper_rowid: int, hidden: bool) -> None:
    """Hide a paper from feeds, search and the API (admins still see it)."""
    with transaction(conn):
        conn.execute("UPDATE papers SET hidden=? WHERE id=?", (int(hidden), paper_rowid))
        _bump_web_rev(conn)


def claim_submitted_by(conn: sqlite3.Connection, paper_rowid: int, username: str) -> bool:
    """Credit a known paper to the first site user who submits it."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE papers SET submitted_by=? WHERE id=? AND (submitted_by IS NULL OR submitted_by='')",
            (username, paper_rowid),
        )
        if cur.rowcount:
            _bump_web_rev(conn)
    return cur.rowcount > 0


def user_submissions(conn: sqlite3.Connection, user_id: int, limit: int = 50) -> list[dict]:
    rows = conn.execute(
        "SELECT * FROM submissions WHERE user_id=? ORDER BY id DESC LIMIT ?", (user_id, limit)
    ).fetchall()
    return [dict(r) for r in rows]
