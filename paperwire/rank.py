"""Trending: community upvotes with time decay.

    score = (votes + 1) / (age_hours + 2) ** GRAVITY

``votes`` is upstream upvotes (HF) plus this site's upvotes; ``age_hours`` is
the time since the paper was featured (``listed_at``), else first published,
else first seen here. GRAVITY = 1.5: a paper needs about 2.8x the votes to
stay level with one half its age. The +1 keeps new papers without votes
ordered by freshness; the +2 hours stops a brand-new paper from dividing by ~0.
Only papers of the last ``window_days`` are scored, so a page view costs one
indexed range scan, whatever the corpus size.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from paperwire.store import papers as store

GRAVITY = 1.5
OFFSET_HOURS = 2.0
DEFAULT_WINDOW_DAYS = 7


def trending_score(votes: int, age_hours: float) -> float:
    """The trending formula for one paper (the SQL below computes the same)."""
    return (votes + 1) / (max(age_hours, 0.0) + OFFSET_HOURS) ** GRAVITY


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def trending(
    conn: sqlite3.Connection,
    *,
    now: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    limit: int = 20,
    offset: int = 0,
    since: str | None = None,
    until: str | None = None,
) -> list[dict]:
    """Papers ranked by trending score, newest window only.

    ``since``/``until`` (``YYYY-MM-DD``, inclusive) replace the window when
    given, e.g. to rank one day's or one week's papers. Each paper dict gets
    ``score`` and ``votes``.
    """
    ref = _now(now)
    if since is None:
        since = (ref - timedelta(days=window_days)).strftime("%Y-%m-%d")
    if until is None:
        until = "9999-12-31"
    rows = store.trending_rows(
        conn, now=ref.strftime("%Y-%m-%dT%H:%M:%SZ"), offset_hours=OFFSET_HOURS, gravity=GRAVITY,
        since=since, until=until, limit=limit, skip=offset,
    )
    out = []
    for r in rows:
        p = store.row_to_paper(r)
        p["score"], p["votes"] = r["score"], r["votes"]
        out.append(p)
    return out
