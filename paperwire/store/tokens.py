"""SQL for personal API tokens (``api_tokens``). Only the SHA-256 of a token is stored."""

from __future__ import annotations

import sqlite3


def insert_token(conn: sqlite3.Connection, *, user_id: int, name: str, token_hash: str, prefix: str,
                 scope: str, now: str) -> int:
    """Add a token row; returns its id."""
    cur = conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scope, created_at) VALUES (?,?,?,?,?,?)",
        (user_id, name, token_hash, prefix, scope, now))
    return cur.lastrowid


def user_tokens(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """A user's tokens, newest first (revoked ones included, marked)."""
    rows = conn.execute(
        "SELECT id, name, prefix, scope, created_at, last_used, revoked_at FROM api_tokens "
        "WHERE user_id=? ORDER BY id DESC", (user_id,)).fetchall()
    return [dict(r) for r in rows]


def revoke_token(conn: sqlite3.Connection, user_id: int, token_id: int, now: str) -> bool:
    """Revoke one of the user's live tokens; False when there is no such live token."""
    cur = conn.execute("UPDATE api_tokens SET revoked_at=? WHERE id=? AND user_id=? AND revoked_at IS NULL",
                       (now, token_id, user_id))
    return cur.rowcount > 0


def revoke_all(conn: sqlite3.Connection, user_id: int, now: str) -> int:
    """Revoke every live token of a user (ban, password reset)."""
    return conn.execute("UPDATE api_tokens SET revoked_at=? WHERE user_id=? AND revoked_at IS NULL",
                        (now, user_id)).rowcount


def token_user(conn: sqlite3.Connection, token_hash: str) -> dict | None:
    """The live token with this hash and its (not banned) user, else None."""
    row = conn.execute(
        "SELECT t.id AS token_id, t.scope, t.last_used, u.id, u.username, u.email, u.is_admin "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "LEFT JOIN user_bans b ON b.user_id = u.id "
        "WHERE t.token_hash=? AND t.revoked_at IS NULL AND b.user_id IS NULL", (token_hash,)).fetchone()
    return dict(row) if row else None


def touch(conn: sqlite3.Connection, token_id: int, now: str, before: str) -> None:
    """Record use; written at most once a minute per token (``before`` = now - 60 s).

    This runs in the request guard, on the event loop: on SQLite it waits at most 100 ms
    for a busy database (then raises OperationalError, which the caller ignores), instead
    of the connection's usual busy timeout."""
    sqlite = isinstance(conn, sqlite3.Connection)
    if sqlite:
        saved = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout=100")
    try:
        conn.execute("UPDATE api_tokens SET last_used=? WHERE id=? AND (last_used IS NULL OR last_used < ?)",
                     (now, token_id, before))
    finally:
        if sqlite:
            conn.execute(f"PRAGMA busy_timeout={int(saved)}")
