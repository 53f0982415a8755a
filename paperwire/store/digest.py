"""All SQL of the digest area: subscriptions, the send ledger (outbox), the
per-subscriber paper ledger and the worker's job table."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Iterable, Iterator, Sequence

from paperwire.store.papers import _in_chunks, row_to_paper

SUB_FIELDS = ("email", "user_id", "frequency", "status", "top_n", "personal", "authors",
              "categories", "queries", "nonce", "source", "created_at", "updated_at",
              "confirmed_at", "unsubscribed_at", "permanent_failures")
_JSON_FIELDS = ("authors", "categories", "queries")
_WORD = re.compile(r"[^\W_]+")  # a word, as the query parser splits them


def _sub(row: sqlite3.Row | None) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    for k in _JSON_FIELDS:
        d[k] = json.loads(d[k])
    d["personal"] = bool(d["personal"])
    return d


def _encode(fields: dict) -> dict:
    out = dict(fields)
    for k in _JSON_FIELDS:
        if k in out and not isinstance(out[k], str):
            out[k] = json.dumps(list(out[k]), ensure_ascii=False)
    if "personal" in out:
        out["personal"] = int(bool(out["personal"]))
    return out


# ---------------------------------------------------------------- subscriptions

def get_subscription(conn: sqlite3.Connection, sub_id: int) -> dict | None:
    return _sub(conn.execute("SELECT * FROM digest_subscriptions WHERE id=?", (sub_id,)).fetchone())


def get_subscription_by_email(conn: sqlite3.Connection, email: str) -> dict | None:
    return _sub(conn.execute("SELECT * FROM digest_subscriptions WHERE email=?", (email,)).fetchone())


def insert_subscription(conn: sqlite3.Connection, fields: dict) -> int:
    f = _encode(fields)
    cols = [c for c in SUB_FIELDS if c in f]
    cur = conn.execute(
        f"INSERT INTO digest_subscriptions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [f[c] for c in cols],
    )
    return cur.lastrowid


def update_subscription(conn: sqlite3.Connection, sub_id: int, fields: dict) -> None:
    f = _encode(fields)
    cols = [c for c in SUB_FIELDS if c in f]
    if cols:
        conn.execute(f"UPDATE digest_subscriptions SET {', '.join(c + '=?' for c in cols)} WHERE id=?",
                     [f[c] for c in cols] + [sub_id])


def list_subscriptions(conn: sqlite3.Connection, status: str | None = None) -> list[dict]:
    if status:
        rows = conn.execute("SELECT * FROM digest_subscriptions WHERE status=? ORDER BY id", (status,))
    else:
        rows = conn.execute("SELECT * FROM digest_subscriptions ORDER BY id")
    return [_sub(r) for r in rows]


def iter_due_subscriptions(conn: sqlite3.Connection, frequency: str, period: str,
                           batch: int = 500) -> Iterator[dict]:
    """Active subscriptions of ``frequency`` with no ledger row for ``period`` yet."""
    last = 0
    while True:
        rows = conn.execute(
            """SELECT s.* FROM digest_subscriptions s
               WHERE s.status='active' AND s.frequency=? AND s.id > ?
                 AND NOT EXISTS (SELECT 1 FROM digest_sends d WHERE d.subscription=s.id AND d.period=?)
               ORDER BY s.id LIMIT ?""",
            (frequency, last, period, batch),
        ).fetchall()
        if not rows:
            return
        for r in rows:
            yield _sub(r)
        last = rows[-1]["id"]


def user_id_for_email(conn: sqlite3.Connection, email: str) -> int | None:
    row = conn.execute("SELECT id FROM users WHERE email=?", (email,)).fetchone()
    return row[0] if row else None


def _table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def user_seed_papers(conn: sqlite3.Connection, user_id: int, limit: int = 20) -> list[int]:
    """Papers (rowids) the user upvoted or saved, newest first.

    ``votes`` is a core table; a saves/bookmarks table belongs to the web area and
    is used when it exists with ``(user_id, paper)`` columns.
    """
    seeds: list[int] = [r[0] for r in conn.execute(
        "SELECT paper FROM votes WHERE user_id=? ORDER BY created_at DESC LIMIT ?", (user_id, limit))]
    for table in ("saves", "saved_papers", "bookmarks"):
        if {"user_id", "paper"} <= _table_columns(conn, table):
            seeds += [r[0] for r in conn.execute(
                f"SELECT paper FROM {table} WHERE user_id=? LIMIT ?", (user_id, limit))]
    return list(dict.fromkeys(seeds))


# ---------------------------------------------------------------- candidate papers

def already_sent(conn: sqlite3.Connection, sub_id: int, rowids: Sequence[int]) -> set[int]:
    """The subset of ``rowids`` this subscriber already got (or has reserved)."""
    if not rowids:
        return set()
    rows = _in_chunks(conn, f"SELECT paper FROM digest_sent_papers WHERE subscription={int(sub_id)} "
                            "AND paper IN ({marks})", list(rowids))
    return {r[0] for r in rows}


def recent_by_authors(conn: sqlite3.Connection, name_norms: Sequence[str], since: str,
                      limit: int) -> list[dict]:
    if not name_norms:
        return []
    marks = ",".join("?" * len(name_norms))
    rows = conn.execute(
        f"""SELECT p.* FROM papers p WHERE p.hidden=0 AND p.feed_date >= ?
            AND p.id IN (SELECT paper FROM paper_authors WHERE name_norm IN ({marks}))
            ORDER BY p.feed_date DESC, p.id DESC LIMIT ?""",
        (since, *name_norms, limit)).fetchall()
    return [row_to_paper(r) for r in rows]


def recent_by_categories(conn: sqlite3.Connection, categories: Sequence[str], since: str,
                         limit: int) -> list[dict]:
    if not categories:
        return []
    marks = ",".join("?" * len(categories))
    rows = conn.execute(
        f"""SELECT p.* FROM papers p WHERE p.hidden=0 AND p.feed_date >= ?
            AND p.id IN (SELECT paper FROM paper_categories WHERE category IN ({marks}))
            ORDER BY (p.upvotes + p.local_upvotes) DESC, p.feed_date DESC, p.id DESC LIMIT ?""",
        (since, *categories, limit)).fetchall()
    return [row_to_paper(r) for r in rows]


def recent_matching(conn: sqlite3.Connection, words: Sequence[str], since: str, limit: int) -> list[dict]:
    """Fallback saved search (no search index): papers whose title or abstract contains every
    word, as a whole word and ignoring case ("2" does not match "12"), newest first. LIKE
    narrows the candidates in SQL; the whole-word test is made on their text."""
    wanted = list(dict.fromkeys(t.lower() for w in words for t in _WORD.findall(w or "")))
    if not wanted:
        return []
    cond = " AND ".join("(p.title LIKE ? ESCAPE '\\' OR p.abstract LIKE ? ESCAPE '\\')" for _ in wanted)
    args: list = [since]
    for w in wanted:
        pat = "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [pat, pat]
    cur = conn.execute(
        f"""SELECT p.* FROM papers p WHERE p.hidden=0 AND p.feed_date >= ? AND {cond}
            ORDER BY p.feed_date DESC, p.id DESC""", args)
    out: list[dict] = []
    while len(out) < limit:
        rows = cur.fetchmany(200)
        if not rows:
            break
        for r in rows:
            have = set(_WORD.findall(f"{r['title']} {r['abstract']}".lower()))
            if have.issuperset(wanted):
                out.append(row_to_paper(r))
    return out[:limit]


def related_fallback(conn: sqlite3.Connection, seeds: Sequence[int], since: str, limit: int) -> list[dict]:
    """Recent papers sharing authors or categories with the seed papers (no search index)."""
    if not seeds:
        return []
    marks = ",".join("?" * len(seeds))
    rows = conn.execute(
        f"""WITH a AS (SELECT DISTINCT name_norm FROM paper_authors WHERE paper IN ({marks})),
                 c AS (SELECT category, COUNT(*) AS n FROM paper_categories WHERE paper IN ({marks})
                       GROUP BY category)
            SELECT p.*,
                   3 * (SELECT COUNT(*) FROM paper_authors pa WHERE pa.paper=p.id AND pa.name_norm IN a)
                   + COALESCE((SELECT SUM(c.n) FROM paper_categories pc JOIN c ON c.category=pc.category
                               WHERE pc.paper=p.id), 0) AS affinity
            FROM papers p
            WHERE p.hidden=0 AND p.feed_date >= ? AND p.id NOT IN ({marks})
            ORDER BY affinity DESC, (p.upvotes + p.local_upvotes) DESC, p.id DESC LIMIT ?""",
        (*seeds, *seeds, since, *seeds, limit)).fetchall()
    return [row_to_paper(r) for r in rows if r["affinity"] > 0]


# ---------------------------------------------------------------- the send ledger

def insert_send(conn: sqlite3.Connection, *, subscription: int, kind: str, period: str, recipient: str,
                message_id: str, papers: Sequence[int], message: bytes, now: str) -> int | None:
    """Record a composed mail (state ``pending``) and reserve its papers; call in a transaction.

    Returns None when a row for (subscription, period) already exists.
    """
    cur = conn.execute(
        """INSERT OR IGNORE INTO digest_sends (subscription, kind, period, state, recipient, message_id,
               papers, message, created_at, updated_at, next_attempt_at)
           VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)""",
        (subscription, kind, period, recipient, message_id, json.dumps(list(papers)), message, now, now, now))
    if not cur.rowcount:
        return None
    send_id = cur.lastrowid
    conn.executemany(
        "INSERT OR IGNORE INTO digest_sent_papers (subscription, paper, send_id) VALUES (?, ?, ?)",
        [(subscription, p, send_id) for p in papers])
    return send_id


def get_send(conn: sqlite3.Connection, send_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM digest_sends WHERE id=?", (send_id,)).fetchone()
    return dict(row) if row else None


def get_send_for_period(conn: sqlite3.Connection, sub_id: int, period: str) -> dict | None:
    row = conn.execute("SELECT * FROM digest_sends WHERE subscription=? AND period=?",
                       (sub_id, period)).fetchone()
    return dict(row) if row else None


def _period_filter(period_prefix: str | None) -> tuple[str, tuple]:
    """SQL condition for "periods starting with ``period_prefix``" (e.g. ``daily:``), or none."""
    if not period_prefix:
        return "", ()
    # substr, not LIKE: '_' in a prefix would be a wildcard, and substr is portable.
    return " AND substr(period, 1, ?) = ?", (len(period_prefix), period_prefix)


def due_sends(conn: sqlite3.Connection, kind: str, now: str, *, after_id: int = 0, limit: int = 200,
              include_in_doubt: bool = False, period_prefix: str | None = None) -> list[dict]:
    """Rows to (re)deliver: ``pending``/``sending`` whose retry time has come."""
    states = "('pending', 'sending', 'in_doubt')" if include_in_doubt else "('pending', 'sending')"
    cond, args = _period_filter(period_prefix)
    rows = conn.execute(
        f"""SELECT * FROM digest_sends WHERE kind=? AND state IN {states}
            AND (next_attempt_at IS NULL OR next_attempt_at <= ?) AND id > ?{cond}
            ORDER BY id LIMIT ?""", (kind, now, after_id, *args, limit)).fetchall()
    return [dict(r) for r in rows]


def next_retry_at(conn: sqlite3.Connection, kind: str, *, period_prefix: str | None = None) -> str | None:
    """Earliest retry time among rows still waiting for delivery."""
    cond, args = _period_filter(period_prefix)
    row = conn.execute("SELECT MIN(next_attempt_at) FROM digest_sends WHERE kind=? AND state IN "
                       f"('pending', 'sending'){cond}", (kind, *args)).fetchone()
    return row[0]


def mark_send(conn: sqlite3.Connection, send_id: int, state: str, now: str, *, error: str | None = None,
              next_attempt_at: str | None = None, bump_attempts: bool = False, sent: bool = False) -> None:
    # Once a mail is sent or has failed for good its bytes are dead weight (~20 KiB
    # each); the Message-ID and paper list stay. in_doubt keeps them for --resend-in-doubt.
    final = state in ("sent", "failed")
    conn.execute(
        """UPDATE digest_sends SET state=?, updated_at=?, last_error=COALESCE(?, last_error),
               next_attempt_at=?, attempts=attempts + ?, sent_at=CASE WHEN ? THEN ? ELSE sent_at END,
               message=CASE WHEN ? THEN X'' ELSE message END
           WHERE id=?""",
        (state, now, error, next_attempt_at, int(bump_attempts), int(sent), now, int(final), send_id))


def requeue_in_doubt(conn: sqlite3.Connection, kind: str, *, period_prefix: str | None = None) -> None:
    """Hand in-doubt sends back to the queue (operator chose a possible duplicate over a loss)."""
    cond, args = _period_filter(period_prefix)
    conn.execute("UPDATE digest_sends SET state='pending', next_attempt_at=NULL WHERE kind=? "
                 f"AND state='in_doubt'{cond}", (kind, *args))


def count_undelivered(conn: sqlite3.Connection, kind: str, *, period_prefix: str | None = None) -> int:
    """Rows of ``kind`` (and of periods starting with ``period_prefix``) not delivered yet."""
    cond, args = _period_filter(period_prefix)
    return conn.execute(
        f"SELECT COUNT(*) FROM digest_sends WHERE kind=? AND state IN ('pending', 'sending'){cond}", (kind, *args)
    ).fetchone()[0]


def latest_feed_date(conn: sqlite3.Connection) -> str | None:
    """The newest feed date of a visible paper (for "nothing new" hints)."""
    return conn.execute("SELECT MAX(feed_date) FROM papers WHERE hidden=0").fetchone()[0]


def release_papers(conn: sqlite3.Connection, send_id: int) -> None:
    """A mail that was never delivered gives its papers back to the subscriber's pool."""
    conn.execute("DELETE FROM digest_sent_papers WHERE send_id=?", (send_id,))


def record_permanent_failure(conn: sqlite3.Connection, sub_id: int, threshold: int, now: str) -> bool:
    """Count a 5xx for the subscription; returns True when it is now marked ``bounced``."""
    row = conn.execute("UPDATE digest_subscriptions SET permanent_failures=permanent_failures+1 WHERE id=? "
                       "RETURNING permanent_failures", (sub_id,)).fetchone()
    if row and row[0] >= threshold:
        conn.execute("UPDATE digest_subscriptions SET status='bounced', updated_at=? WHERE id=? "
                     "AND status='active'", (now, sub_id))
        return True
    return False


def reset_permanent_failures(conn: sqlite3.Connection, sub_id: int) -> None:
    conn.execute("UPDATE digest_subscriptions SET permanent_failures=0 WHERE id=? AND permanent_failures>0",
                 (sub_id,))


def send_counts(conn: sqlite3.Connection, period: str | None = None) -> dict[str, int]:
    if period:
        rows = conn.execute("SELECT state, COUNT(*) FROM digest_sends WHERE period=? GROUP BY state", (period,))
    else:
        rows = conn.execute("SELECT state, COUNT(*) FROM digest_sends GROUP BY state")
    return dict(rows.fetchall())


def sends_for_subscription(conn: sqlite3.Connection, sub_id: int) -> list[dict]:
    rows = conn.execute("SELECT id, kind, period, state, message_id, papers, attempts, last_error, sent_at "
                        "FROM digest_sends WHERE subscription=? ORDER BY id", (sub_id,))
    return [dict(r) for r in rows]


def problem_sends(conn: sqlite3.Connection, limit: int = 200) -> list[dict]:
    """Mails that need a human look: failed, in doubt, or still waiting for a retry."""
    rows = conn.execute(
        """SELECT id, recipient, kind, period, state, attempts, last_error, updated_at FROM digest_sends
           WHERE state IN ('failed', 'in_doubt') OR (state IN ('pending', 'sending') AND attempts > 0)
           ORDER BY id DESC LIMIT ?""", (limit,))
    return [dict(r) for r in rows]


def failed_sends(conn: sqlite3.Connection, ids: Iterable[int]) -> list[dict]:
    rows = _in_chunks(conn, "SELECT id, recipient, period, last_error FROM digest_sends "
                            "WHERE state='failed' AND id IN ({marks})", list(ids))
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- worker jobs

def get_job(conn: sqlite3.Connection, job: str, period: str) -> dict | None:
    row = conn.execute("SELECT * FROM worker_jobs WHERE job=? AND period=?", (job, period)).fetchone()
    return dict(row) if row else None


def start_job(conn: sqlite3.Connection, job: str, period: str, now: str) -> None:
    conn.execute(
        """INSERT INTO worker_jobs (job, period, state, attempts, started_at) VALUES (?, ?, 'running', 1, ?)
           ON CONFLICT (job, period) DO UPDATE SET state='running', attempts=worker_jobs.attempts+1, started_at=excluded.started_at,
               finished_at=NULL""", (job, period, now))


def finish_job(conn: sqlite3.Connection, job: str, period: str, state: str, now: str, detail: str = "") -> None:
    conn.execute("UPDATE worker_jobs SET state=?, finished_at=?, detail=? WHERE job=? AND period=?",
                 (state, now, detail, job, period))
