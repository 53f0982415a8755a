"""The site's feeds composed from the store: a day's, week's or month's papers,
newest first or by trending score, plus the store's date navigation.

This sits above the store: ranking (:mod:`paperwire.rank`) is a consumer of the
store, so the store's own feed module holds only SQL and this module joins the
two. Web pages, the API, Atom feeds and the CLI import feeds from here.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from paperwire import rank
from paperwire.store import feed as sql
# The SQL-only parts of the feed, re-exported so callers need one module.
from paperwire.store.feed import (  # noqa: F401
    adjacent_dates,
    count_between,
    get_visible_paper_row,
    latest_feed_date,
    like_search,
    newest,
    paper_submitter_names,
    papers_by_author,
    previous_date,
    submitter_of,
)


def papers_between(
    conn: sqlite3.Connection,
    since: str,
    until: str,
    *,
    sort: str = "date",
    limit: int = 50,
    offset: int = 0,
    submitter: str | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """Visible papers with ``since <= feed_date <= until``, by date or by trending score.

    Trending uses :func:`paperwire.rank.trending` (one formula for the whole site).
    Each paper gets ``votes`` (upstream + local upvotes).
    """
    if sort == "trending" and not submitter:
        return rank.trending(conn, now=now, since=since, until=until, limit=limit, offset=offset)
    if sort == "trending":
        # A submitter's papers are few: score them in Python with the same formula.
        papers = sql.submitted_between(conn, since, until, submitter)
        ref = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        for p in papers:
            p["score"] = rank.trending_score(p["votes"], age_hours(p, ref))
        papers.sort(key=lambda p: (-p["score"], -p["id"]))
        return papers[offset : offset + limit]
    return sql.papers_by_date(conn, since, until, limit=limit, offset=offset, submitter=submitter)


def age_hours(p: dict, ref: datetime) -> float:
    """Hours from when ``p`` reached the feed (listed, else published, else first seen) to ``ref``."""
    stamp = p.get("listed_at") or p.get("published") or p.get("first_seen")
    try:
        t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return 0.0
    return (ref - t).total_seconds() / 3600.0
