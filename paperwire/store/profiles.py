"""SQL for lasting accounts: profiles, avatars, e-mail verification, account changes,
the admin's user and hidden-paper lists, and the cursor listing of all papers."""

from __future__ import annotations

import sqlite3

from paperwire.store.papers import row_to_paper


def _bump_web_rev(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='web_rev'")


# ---------------------------------------------------------------- users

def user_by_name(conn: sqlite3.Connection, username: str) -> dict | None:
    """A user by exact username (profiles are addressed by name)."""
    row = conn.execute("SELECT id, username, email, is_admin, created_at, password_hash FROM users "
                       "WHERE username=?", (username,)).fetchone()
    return dict(row) if row else None


def set_email(conn: sqlite3.Connection, user_id: int, email: str) -> bool:
    """Change the address; False when another account has it (the caller's transaction)."""
    if conn.execute("SELECT 1 FROM users WHERE email=? AND id<>?", (email, user_id)).fetchone():
        return False
    conn.execute("UPDATE users SET email=? WHERE id=?", (email, user_id))
    return True


def delete_sessions(conn: sqlite3.Connection, user_id: int) -> int:
    """End every session of a user (password reset, ban)."""
    return conn.execute("DELETE FROM sessions WHERE user_id=?", (user_id,)).rowcount


def email_taken(conn: sqlite3.Connection, email: str) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE email=?", (email,)).fetchone() is not None


# ---------------------------------------------------------------- verification

def verified_email(conn: sqlite3.Connection, user_id: int) -> str | None:
    row = conn.execute("SELECT email FROM email_verifications WHERE user_id=?", (user_id,)).fetchone()
    return row[0] if row else None


def mark_verified(conn: sqlite3.Connection, user_id: int, email: str, now: str) -> None:
    conn.execute("DELETE FROM email_verifications WHERE user_id=?", (user_id,))
    conn.execute("INSERT INTO email_verifications (user_id, email, verified_at) VALUES (?,?,?)",
                 (user_id, email, now))


# ---------------------------------------------------------------- profiles

def get_profile(conn: sqlite3.Connection, user_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM user_profiles WHERE user_id=?", (user_id,)).fetchone()
    return dict(row) if row else None


def save_profile(conn: sqlite3.Connection, user_id: int, *, bio: str, bio_html: str, public_upvotes: bool,
                 now: str) -> None:
    conn.execute("DELETE FROM user_profiles WHERE user_id=?", (user_id,))
    conn.execute("INSERT INTO user_profiles (user_id, bio, bio_html, public_upvotes, updated_at) VALUES (?,?,?,?,?)",
                 (user_id, bio, bio_html, int(public_upvotes), now))


def get_avatar(conn: sqlite3.Connection, user_id: int) -> dict | None:
    row = conn.execute("SELECT image, media_type, etag, updated_at FROM user_avatars WHERE user_id=?",
                       (user_id,)).fetchone()
    return dict(row) if row else None


def has_avatar(conn: sqlite3.Connection, user_id: int) -> str | None:
    """The uploaded avatar's etag, or None (identicon)."""
    row = conn.execute("SELECT etag FROM user_avatars WHERE user_id=?", (user_id,)).fetchone()
    return row[0] if row else None


def set_avatar(conn: sqlite3.Connection, user_id: int, image: bytes, media_type: str, etag: str, now: str) -> None:
    conn.execute("DELETE FROM user_avatars WHERE user_id=?", (user_id,))
    conn.execute("INSERT INTO user_avatars (user_id, image, media_type, etag, updated_at) VALUES (?,?,?,?,?)",
                 (user_id, image, media_type, etag, now))


def delete_avatar(conn: sqlite3.Connection, user_id: int) -> bool:
    return conn.execute("DELETE FROM user_avatars WHERE user_id=?", (user_id,)).rowcount > 0


def submitted_papers(conn: sqlite3.Connection, username: str, limit: int = 50) -> list[dict]:
    rows = conn.execute("SELECT * FROM papers WHERE submitted_by=? AND hidden=0 ORDER BY listed_at DESC, id DESC "
                        "LIMIT ?", (username, limit)).fetchall()
    return [row_to_paper(r) for r in rows]


def upvoted_papers(conn: sqlite3.Connection, user_id: int, limit: int = 50) -> list[dict]:
    rows = conn.execute("SELECT p.* FROM votes v JOIN papers p ON p.id = v.paper WHERE v.user_id=? AND p.hidden=0 "
                        "ORDER BY v.created_at DESC, p.id DESC LIMIT ?", (user_id, limit)).fetchall()
    return [row_to_paper(r) for r in rows]


def public_folders(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    rows = conn.execute(
        "SELECT f.id, f.name, f.share_token, f.created_at, "
        "(SELECT COUNT(*) FROM library_folder_items i WHERE i.folder_id = f.id) AS n "
        "FROM library_folders f WHERE f.user_id=? AND f.is_public=1 AND f.share_token IS NOT NULL "
        "ORDER BY f.name", (user_id,)).fetchall()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- admin

def users_page(conn: sqlite3.Connection, q: str = "", limit: int = 200) -> list[dict]:
    """Users for the admin page, with their ban (if any), newest first."""
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        "SELECT u.id, u.username, u.email, u.is_admin, u.created_at, b.reason AS ban_reason, "
        "b.created_at AS banned_at FROM users u LEFT JOIN user_bans b ON b.user_id = u.id "
        # NOCASE columns: pattern-match them under "binary" (migration m0801; LIKE ignores case anyway).
        "WHERE u.username COLLATE \"binary\" LIKE ? ESCAPE '\\' OR u.email COLLATE \"binary\" LIKE ? ESCAPE '\\' "
        "ORDER BY u.id DESC LIMIT ?",
        (like, like, limit)).fetchall()
    return [dict(r) for r in rows]


def hidden_papers(conn: sqlite3.Connection, limit: int = 500) -> list[dict]:
    rows = conn.execute("SELECT * FROM papers WHERE hidden=1 ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [row_to_paper(r) for r in rows]


def bump(conn: sqlite3.Connection) -> None:
    """Pages changed (a ban hides a name's state, an unhide shows a paper)."""
    _bump_web_rev(conn)


# ---------------------------------------------------------------- every paper, newest first

def papers_page(conn: sqlite3.Connection, after: tuple[str, int] | None, limit: int) -> list[dict]:
    """Visible papers ordered by (published, id) descending, starting after the cursor
    ``(published, id)``: a keyset page, stable while papers are added."""
    if after is None:
        rows = conn.execute("SELECT * FROM papers WHERE hidden=0 ORDER BY COALESCE(published, '') DESC, id DESC "
                            "LIMIT ?", (limit,)).fetchall()
    else:
        pub, rowid = after
        rows = conn.execute(
            "SELECT * FROM papers WHERE hidden=0 AND (COALESCE(published, '') < ? OR "
            "(COALESCE(published, '') = ? AND id < ?)) ORDER BY COALESCE(published, '') DESC, id DESC LIMIT ?",
            (pub, pub, rowid, limit)).fetchall()
    return [row_to_paper(r) for r in rows]
