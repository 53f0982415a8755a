"""SQL of the local mail outbox (``mail_outbox``): mail the outbox transport keeps
instead of sending it (see :mod:`paperwire.digest.outbox`)."""

from __future__ import annotations

import sqlite3

_LIST_COLUMNS = "id, message_id, sender, recipient, subject, created_at"


def add_mail(conn: sqlite3.Connection, *, message_id: str, sender: str, recipient: str, subject: str,
             message: bytes, now: str) -> int:
    """Keep one mail; returns its id. The same Message-ID twice is kept once (its first id)."""
    conn.execute(
        """INSERT INTO mail_outbox (message_id, sender, recipient, subject, message, created_at)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING""",
        (message_id, sender, recipient, subject, message, now))
    return conn.execute("SELECT id FROM mail_outbox WHERE message_id=?", (message_id,)).fetchone()[0]


def list_mail(conn: sqlite3.Connection, *, limit: int = 100, offset: int = 0) -> list[dict]:
    """Newest first, without the message bytes."""
    rows = conn.execute(f"SELECT {_LIST_COLUMNS} FROM mail_outbox ORDER BY id DESC LIMIT ? OFFSET ?",
                        (limit, offset))
    return [dict(r) for r in rows]


def count_mail(conn: sqlite3.Connection) -> int:
    """How many mails the outbox holds."""
    return conn.execute("SELECT COUNT(*) FROM mail_outbox").fetchone()[0]


def get_mail(conn: sqlite3.Connection, mail_id: int) -> dict | None:
    """One kept mail with its bytes, or None."""
    row = conn.execute("SELECT * FROM mail_outbox WHERE id=?", (mail_id,)).fetchone()
    return dict(row) if row else None
