"""SQL for discussions: comments, revisions, votes, reports, bans, the admin audit
log, notifications, notification preferences and the notification mail ledger.

Callers (``paperwire.discuss``) wrap multi-step writes in :func:`transaction`;
every change a page could show bumps ``meta.web_rev`` (page caches key on it) and
:func:`recount` keeps ``papers.num_comments`` equal to the visible comments.
"""

from __future__ import annotations

import sqlite3

_VISIBLE = "deleted_at IS NULL AND hidden = 0"


def bump_web_rev(conn: sqlite3.Connection) -> None:
    """Anonymous page caches key on web_rev: any change to a discussion bumps it."""
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='web_rev'")


def recount(conn: sqlite3.Connection, paper: int) -> int:
    """Set ``papers.num_comments`` to the paper's visible (not deleted, not hidden) comments."""
    n = conn.execute(f"SELECT COUNT(*) FROM comments WHERE paper=? AND {_VISIBLE}", (paper,)).fetchone()[0]
    conn.execute("UPDATE papers SET num_comments=? WHERE id=?", (n, paper))
    return n


# ---------------------------------------------------------------- comments

def insert_comment(conn: sqlite3.Connection, *, paper: int, parent: int | None, user_id: int, raw: str,
                   html: str, now: str) -> int:
    cur = conn.execute(
        "INSERT INTO comments (paper, parent, user_id, raw, html, created_at) VALUES (?,?,?,?,?,?)",
        (paper, parent, user_id, raw, html, now))
    return cur.lastrowid


def get_comment(conn: sqlite3.Connection, comment_id: int) -> dict | None:
    """A comment with its author's name and its paper's public id."""
    row = conn.execute(
        "SELECT c.*, u.username AS author, p.paper_id AS paper_public, p.title AS paper_title "
        "FROM comments c LEFT JOIN users u ON u.id = c.user_id JOIN papers p ON p.id = c.paper WHERE c.id=?",
        (comment_id,)).fetchone()
    return dict(row) if row else None


def paper_comments(conn: sqlite3.Connection, paper: int) -> list[dict]:
    """Every comment of a paper (deleted and hidden ones too), oldest first."""
    rows = conn.execute(
        "SELECT c.*, u.username AS author, "
        "(SELECT COUNT(*) FROM comment_revisions r WHERE r.comment = c.id) AS num_edits "
        "FROM comments c LEFT JOIN users u ON u.id = c.user_id WHERE c.paper=? ORDER BY c.id",
        (paper,)).fetchall()
    return [dict(r) for r in rows]


def update_text(conn: sqlite3.Connection, comment_id: int, raw: str, html: str, now: str) -> None:
    """Keep the old text as a revision, then store the new one."""
    conn.execute(
        "INSERT INTO comment_revisions (comment, rev, raw, created_at) SELECT id, "
        "(SELECT COALESCE(MAX(rev), 0) + 1 FROM comment_revisions WHERE comment=?), raw, COALESCE(edited_at, created_at) "
        "FROM comments WHERE id=?", (comment_id, comment_id))
    conn.execute("UPDATE comments SET raw=?, html=?, edited_at=? WHERE id=?", (raw, html, now, comment_id))


def revisions(conn: sqlite3.Connection, comment_id: int) -> list[dict]:
    rows = conn.execute("SELECT rev, raw, created_at FROM comment_revisions WHERE comment=? ORDER BY rev",
                        (comment_id,)).fetchall()
    return [dict(r) for r in rows]


def mark_deleted(conn: sqlite3.Connection, comment_id: int, now: str) -> None:
    """The text and its history go; the row stays as a placeholder for its replies."""
    conn.execute("UPDATE comments SET raw='', html='', deleted_at=? WHERE id=?", (now, comment_id))
    conn.execute("DELETE FROM comment_revisions WHERE comment=?", (comment_id,))


def set_comment_hidden(conn: sqlite3.Connection, comment_id: int, hidden: bool) -> None:
    conn.execute("UPDATE comments SET hidden=? WHERE id=?", (int(hidden), comment_id))


def set_comment_vote(conn: sqlite3.Connection, user_id: int, comment_id: int, up: bool, now: str) -> int:
    """Add or take back one vote (idempotent); keeps comments.upvotes in step. Returns the total."""
    if up:
        delta = conn.execute("INSERT OR IGNORE INTO comment_votes (user_id, comment, created_at) VALUES (?,?,?)",
                             (user_id, comment_id, now)).rowcount
    else:
        delta = -conn.execute("DELETE FROM comment_votes WHERE user_id=? AND comment=?",
                              (user_id, comment_id)).rowcount
    if delta:
        conn.execute("UPDATE comments SET upvotes = upvotes + ? WHERE id=?", (delta, comment_id))
    return conn.execute("SELECT upvotes FROM comments WHERE id=?", (comment_id,)).fetchone()[0]


def user_comment_votes(conn: sqlite3.Connection, user_id: int, paper: int) -> set[int]:
    rows = conn.execute("SELECT v.comment FROM comment_votes v JOIN comments c ON c.id = v.comment "
                        "WHERE v.user_id=? AND c.paper=?", (user_id, paper))
    return {r[0] for r in rows}


def user_comments(conn: sqlite3.Connection, user_id: int, limit: int = 50) -> list[dict]:
    rows = conn.execute(
        f"SELECT c.*, p.paper_id AS paper_public, p.title AS paper_title FROM comments c "
        f"JOIN papers p ON p.id = c.paper WHERE c.user_id=? AND c.{_VISIBLE.replace(' AND ', ' AND c.')} "
        "ORDER BY c.id DESC LIMIT ?", (user_id, limit)).fetchall()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- reports, bans, audit

def add_report(conn: sqlite3.Connection, comment_id: int, user_id: int, reason: str, now: str) -> bool:
    """One open report per user and comment; False when this user already reported it."""
    cur = conn.execute(
        "INSERT INTO comment_reports (comment, user_id, reason, created_at) VALUES (?,?,?,?) "
        "ON CONFLICT (comment, user_id) DO UPDATE SET reason=excluded.reason, created_at=excluded.created_at, "
        "resolved_at=NULL, resolution=NULL WHERE comment_reports.resolved_at IS NOT NULL",
        (comment_id, user_id, reason, now))
    return cur.rowcount > 0


def open_reports(conn: sqlite3.Connection, limit: int = 200) -> list[dict]:
    """Reported comments with open reports, most reported first."""
    rows = conn.execute(
        "SELECT c.id, c.raw, c.html, c.hidden, c.deleted_at, c.created_at, c.user_id, u.username AS author, "
        "p.paper_id AS paper_public, p.title AS paper_title, COUNT(r.id) AS reports, "
        "GROUP_CONCAT(r.reason, ' | ') AS reasons, MIN(r.created_at) AS first_report, "
        "(SELECT 1 FROM user_bans b WHERE b.user_id = c.user_id) AS banned "
        "FROM comment_reports r JOIN comments c ON c.id = r.comment JOIN papers p ON p.id = c.paper "
        "LEFT JOIN users u ON u.id = c.user_id WHERE r.resolved_at IS NULL "
        # Every selected column grouped: PostgreSQL allows no others (SQLite takes any).
        "GROUP BY c.id, c.raw, c.html, c.hidden, c.deleted_at, c.created_at, c.user_id, u.username, p.paper_id, "
        "p.title ORDER BY reports DESC, first_report LIMIT ?", (limit,)).fetchall()
    return [dict(r) for r in rows]


def resolve_reports(conn: sqlite3.Connection, comment_id: int, resolution: str, now: str) -> int:
    return conn.execute("UPDATE comment_reports SET resolved_at=?, resolution=? WHERE comment=? AND resolved_at IS NULL",
                        (now, resolution, comment_id)).rowcount


def ban_user(conn: sqlite3.Connection, user_id: int, admin_id: int, reason: str, now: str) -> bool:
    return conn.execute("INSERT OR IGNORE INTO user_bans (user_id, reason, banned_by, created_at) VALUES (?,?,?,?)",
                        (user_id, reason, admin_id, now)).rowcount > 0


def unban_user(conn: sqlite3.Connection, user_id: int) -> bool:
    return conn.execute("DELETE FROM user_bans WHERE user_id=?", (user_id,)).rowcount > 0


def is_banned(conn: sqlite3.Connection, user_id: int) -> bool:
    return conn.execute("SELECT 1 FROM user_bans WHERE user_id=?", (user_id,)).fetchone() is not None


def banned_users(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute("SELECT b.*, u.username FROM user_bans b JOIN users u ON u.id = b.user_id "
                        "ORDER BY b.created_at DESC").fetchall()
    return [dict(r) for r in rows]


def audit(conn: sqlite3.Connection, *, admin_id: int, admin_name: str, action: str, target_kind: str,
          target_id, detail: str, now: str) -> None:
    conn.execute("INSERT INTO admin_audit (admin_id, admin_name, action, target_kind, target_id, detail, created_at) "
                 "VALUES (?,?,?,?,?,?,?)", (admin_id, admin_name, action, target_kind, str(target_id), detail, now))


def audit_log(conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
    rows = conn.execute("SELECT * FROM admin_audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- notifications

def add_notification(conn: sqlite3.Connection, *, user_id: int, kind: str, comment_id: int, actor_id: int,
                     now: str) -> int | None:
    cur = conn.execute("INSERT OR IGNORE INTO notifications (user_id, kind, comment, actor_id, created_at) "
                       "VALUES (?,?,?,?,?)", (user_id, kind, comment_id, actor_id, now))
    return cur.lastrowid if cur.rowcount else None


def notifications_for(conn: sqlite3.Connection, user_id: int, limit: int = 100) -> list[dict]:
    rows = conn.execute(
        "SELECT n.*, a.username AS actor, c.raw, c.deleted_at, c.hidden, c.paper, p.paper_id AS paper_public, "
        "p.title AS paper_title FROM notifications n JOIN comments c ON c.id = n.comment "
        "JOIN papers p ON p.id = c.paper LEFT JOIN users a ON a.id = n.actor_id "
        "WHERE n.user_id=? ORDER BY n.id DESC LIMIT ?", (user_id, limit)).fetchall()
    return [dict(r) for r in rows]


def unread_count(conn: sqlite3.Connection, user_id: int) -> int:
    return conn.execute(
        "SELECT COUNT(*) FROM notifications n JOIN comments c ON c.id = n.comment "
        f"WHERE n.user_id=? AND n.read_at IS NULL AND c.{_VISIBLE.replace(' AND ', ' AND c.')}",
        (user_id,)).fetchone()[0]


def mark_read(conn: sqlite3.Connection, user_id: int, now: str) -> int:
    return conn.execute("UPDATE notifications SET read_at=? WHERE user_id=? AND read_at IS NULL",
                        (now, user_id)).rowcount


def get_prefs(conn: sqlite3.Connection, user_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM notify_prefs WHERE user_id=?", (user_id,)).fetchone()
    return dict(row) if row else None


def ensure_prefs(conn: sqlite3.Connection, user_id: int, nonce: str, now: str) -> dict:
    conn.execute("INSERT OR IGNORE INTO notify_prefs (user_id, email_replies, nonce, updated_at) VALUES (?,1,?,?)",
                 (user_id, nonce, now))
    return get_prefs(conn, user_id)


def set_email_replies(conn: sqlite3.Connection, user_id: int, on: bool, now: str) -> None:
    conn.execute("UPDATE notify_prefs SET email_replies=?, updated_at=? WHERE user_id=?", (int(on), now, user_id))


# ---------------------------------------------------------------- notification mail ledger

def queue_mail(conn: sqlite3.Connection, *, notification: int, user_id: int, recipient: str, message_id: str,
               message: bytes, now: str) -> int:
    cur = conn.execute(
        "INSERT OR IGNORE INTO notify_mail (notification, user_id, state, recipient, message_id, message, "
        "created_at, updated_at) VALUES (?,?,'pending',?,?,?,?,?)",
        (notification, user_id, recipient, message_id, message, now, now))
    return cur.lastrowid


def due_mail(conn: sqlite3.Connection, now: str, limit: int = 100) -> list[dict]:
    rows = conn.execute("SELECT * FROM notify_mail WHERE state='pending' AND (next_attempt_at IS NULL "
                        "OR next_attempt_at <= ?) ORDER BY id LIMIT ?", (now, limit)).fetchall()
    return [dict(r) for r in rows]


def mark_mail(conn: sqlite3.Connection, mail_id: int, state: str, now: str, *, error: str | None = None,
              next_attempt_at: str | None = None, bump_attempts: bool = False, sent: bool = False) -> None:
    conn.execute(
        "UPDATE notify_mail SET state=?, updated_at=?, last_error=COALESCE(?, last_error), next_attempt_at=?, "
        "attempts = attempts + ?, sent_at = CASE WHEN ? THEN ? ELSE sent_at END WHERE id=?",
        (state, now, error, next_attempt_at, int(bump_attempts), int(sent), now, mail_id))


def mail_rows(conn: sqlite3.Connection, user_id: int | None = None) -> list[dict]:
    if user_id is None:
        rows = conn.execute("SELECT * FROM notify_mail ORDER BY id").fetchall()
    else:
        rows = conn.execute("SELECT * FROM notify_mail WHERE user_id=? ORDER BY id", (user_id,)).fetchall()
    return [dict(r) for r in rows]
