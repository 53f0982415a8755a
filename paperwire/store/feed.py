"""SQL behind the site's feeds: papers of a day/week/month, adjacent dates, author pages.

Only SQL: trending order and other composition live in :mod:`paperwire.feed`.

Every query here runs on an index (``papers_feed_date``, ``paper_authors_name``),
so a page view costs the same on the demo corpus and on a million papers.
"""

from __future__ import annotations

import sqlite3

from paperwire.model import normalize_title
from paperwire.store.accounts import cache_revs
from paperwire.store.meta import database_file
from paperwire.store.papers import row_to_paper

# Newest first by the time the paper reached the feed (HF "publishedAt" of a daily paper).
_DATE_ORDER = "COALESCE(listed_at, published, first_seen) DESC, id DESC"


# (database, (rev, web_rev)) -> newest visible feed date: every page asks, and only an import
# (rev) or a hide (web_rev) can change it. The revisions are read before the date, so a date
# is never remembered under a revision newer than the one it was read at.
_latest: dict = {}


def latest_feed_date(conn: sqlite3.Connection) -> str | None:
    """The newest date that has a visible paper."""
    key = (database_file(conn) or id(conn), cache_revs(conn))
    if key in _latest:
        return _latest[key]
    row = conn.execute("SELECT MAX(feed_date) FROM papers WHERE hidden=0").fetchone()
    latest = row[0] if row else None
    if len(_latest) > 64:
        _latest.clear()
    _latest[key] = latest
    return latest


def adjacent_dates(conn: sqlite3.Connection, since: str, until: str) -> tuple[str | None, str | None]:
    """(newest date with visible papers before ``since``, oldest after ``until``), in one
    statement: a page's previous/next links (one round trip on PostgreSQL, not two)."""
    row = conn.execute(
        "SELECT (SELECT MAX(feed_date) FROM papers WHERE feed_date < ? AND hidden=0), "
        "(SELECT MIN(feed_date) FROM papers WHERE feed_date > ? AND hidden=0)", (since, until)).fetchone()
    return row[0], row[1]


def previous_date(conn: sqlite3.Connection, before: str) -> str | None:
    """The newest date with visible papers strictly before ``before`` (YYYY-MM-DD)."""
    return conn.execute(
        "SELECT MAX(feed_date) FROM papers WHERE feed_date < ? AND hidden=0", (before,)
    ).fetchone()[0]


def count_between(conn: sqlite3.Connection, since: str, until: str, *, submitter: str | None = None) -> int:
    sql = "SELECT COUNT(*) FROM papers WHERE hidden=0 AND feed_date >= ? AND feed_date <= ?"
    args: list = [since, until]
    if submitter:
        sql += " AND submitted_by = ?"
        args.append(submitter)
    return conn.execute(sql, args).fetchone()[0]


def papers_by_date(
    conn: sqlite3.Connection,
    since: str,
    until: str,
    *,
    limit: int = 50,
    offset: int = 0,
    submitter: str | None = None,
) -> list[dict]:
    """Visible papers with ``since <= feed_date <= until``, newest first, with ``votes``.

    Trending order is composed above the store, in :mod:`paperwire.feed`.
    """
    sql = "SELECT * FROM papers WHERE hidden=0 AND feed_date >= ? AND feed_date <= ?"
    args: list = [since, until]
    if submitter:
        sql += " AND submitted_by = ?"
        args.append(submitter)
    sql += f" ORDER BY {_DATE_ORDER} LIMIT ? OFFSET ?"
    return [_with_votes(r) for r in conn.execute(sql, [*args, limit, offset])]


def submitted_between(conn: sqlite3.Connection, since: str, until: str, submitter: str) -> list[dict]:
    """All visible papers ``submitter`` brought in with ``since <= feed_date <= until``, with ``votes``."""
    rows = conn.execute(
        "SELECT * FROM papers WHERE hidden=0 AND feed_date >= ? AND feed_date <= ? AND submitted_by = ?",
        (since, until, submitter),
    )
    return [_with_votes(r) for r in rows]


def _with_votes(row: sqlite3.Row) -> dict:
    p = row_to_paper(row)
    p["votes"] = (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0)
    return p


def newest(conn: sqlite3.Connection, *, limit: int = 50, offset: int = 0) -> list[dict]:
    """Visible papers, newest feed date first (the API's default listing)."""
    rows = conn.execute(
        f"SELECT * FROM papers WHERE hidden=0 ORDER BY feed_date DESC, {_DATE_ORDER} LIMIT ? OFFSET ?",
        (limit, offset),
    ).fetchall()
    return [_with_votes(r) for r in rows]


def papers_by_author(conn: sqlite3.Connection, name: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Visible papers with an author whose normalised name equals ``name``'s, newest first."""
    norm = normalize_title(name)
    if not norm:
        return [], 0
    total = conn.execute(
        "SELECT COUNT(DISTINCT a.paper) FROM paper_authors a JOIN papers p ON p.id=a.paper "
        "WHERE a.name_norm=? AND p.hidden=0",
        (norm,),
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT p.* FROM papers p WHERE p.hidden=0 AND p.id IN "
        "(SELECT paper FROM paper_authors WHERE name_norm=?) "
        f"ORDER BY p.feed_date DESC, {_DATE_ORDER} LIMIT ? OFFSET ?",
        (norm, limit, offset),
    ).fetchall()
    return [_with_votes(r) for r in rows], total


def get_visible_paper_row(conn: sqlite3.Connection, rowid: int) -> dict | None:
    row = conn.execute("SELECT * FROM papers WHERE id=?", (rowid,)).fetchone()
    return _with_votes(row) if row else None


def paper_submitter_names(conn: sqlite3.Connection, usernames: list[str]) -> set[str]:
    """Which of these ``submitted_by`` names are accounts on this site (to link them)."""
    if not usernames:
        return set()
    marks = ",".join("?" * len(usernames))
    return {r[0].lower() for r in conn.execute(f"SELECT username FROM users WHERE username IN ({marks})", usernames)}


def like_search(conn: sqlite3.Connection, terms: list[str], *, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
    """Fallback search when the search index module is not installed: every term
    must occur in the title or abstract (a full scan; the real search is indexed)."""
    where = " AND ".join(["(title LIKE ? ESCAPE '\\' OR abstract LIKE ? ESCAPE '\\')"] * len(terms)) or "1"
    args: list = []
    for t in terms:
        pat = "%" + t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [pat, pat]
    total = conn.execute(f"SELECT COUNT(*) FROM papers WHERE hidden=0 AND {where}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM papers WHERE hidden=0 AND {where} ORDER BY feed_date DESC, id DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    return [_with_votes(r) for r in rows], total


def submitter_of(conn: sqlite3.Connection, arxiv_id: str) -> str | None:
    """The site user whose submission brought this paper in (the harvester fetches
    queued submissions but leaves ``papers.submitted_by`` alone)."""
    row = conn.execute(
        "SELECT u.username FROM submissions s JOIN users u ON u.id = s.user_id "
        "WHERE s.arxiv_id = ? AND s.status = 'done' ORDER BY s.id LIMIT 1",
        (arxiv_id,),
    ).fetchone()
    return row[0] if row else None
