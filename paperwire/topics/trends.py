"""Topics over time: papers and upvotes per map cluster per week, and "rising this week".

Weeks run Monday to Sunday (by ``feed_date``) and are anchored at the newest mapped paper's
week, not at the wall clock, so a store that was last harvested a while ago (or the demo's
2007 records) still shows its latest weeks. A cluster is *rising* when its papers this week
stand out against its own previous 8 weeks: ``(this - mean) / sqrt(mean + 1)``, a Poisson-
style z-score, so a jump from 1 to 3 papers does not outrank one from 40 to 80.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta

from paperwire.store import topics as sql

BASELINE_WEEKS = 8
MIN_THIS_WEEK = 2  # a cluster with fewer new papers is never "rising"


@dataclass
class ClusterSeries:
    id: int
    label: str
    size: int
    papers: list[int] = field(default_factory=list)   # per week, oldest first
    upvotes: list[int] = field(default_factory=list)


@dataclass
class Trends:
    weeks: list[date]                 # Mondays, oldest first; the last is "this week"
    clusters: list[ClusterSeries]
    rising: list[dict]                # {id, label, this_week, baseline, growth, score}
    level: str = "coarse"

    @property
    def empty(self) -> bool:
        return not self.weeks or not self.clusters


def monday(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def weekly(conn: sqlite3.Connection, *, weeks: int = 12, level: str = "coarse", end: date | None = None) -> Trends:
    """Per-cluster weekly papers and upvotes over the last ``weeks`` weeks, plus the risers."""
    weeks = max(weeks, BASELINE_WEEKS + 1)
    if end is None:
        newest = sql.newest_feed_date(conn)
        if not newest:
            return Trends([], [], [], level)
        end = date.fromisoformat(newest[:10])
    last = monday(end)
    starts = [last - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    index = {d: i for i, d in enumerate(starts)}
    info = {c["id"]: c for c in sql.clusters(conn, level)}
    series = {cid: ClusterSeries(cid, c["label"], c["size"], [0] * weeks, [0] * weeks) for cid, c in info.items()}
    for cid, day, n, votes in sql.daily_cluster_counts(conn, starts[0].isoformat(), level):
        try:
            i = index.get(monday(date.fromisoformat(str(day)[:10])))
        except ValueError:
            continue  # a malformed feed_date must not break the page
        if i is None or cid not in series:
            continue
        series[cid].papers[i] += int(n)
        series[cid].upvotes[i] += int(votes)
    ordered = sorted(series.values(), key=lambda s: (-sum(s.papers), s.id))
    return Trends(starts, ordered, rising(ordered), level)


def rising(clusters: list[ClusterSeries], *, top: int = 5) -> list[dict]:
    """Clusters growing fastest this week against their previous :data:`BASELINE_WEEKS` weeks."""
    out = []
    for s in clusters:
        if len(s.papers) < BASELINE_WEEKS + 1:
            continue
        this = s.papers[-1]
        base = s.papers[-1 - BASELINE_WEEKS:-1]
        mean = sum(base) / len(base)
        score = (this - mean) / math.sqrt(mean + 1.0)
        if this < MIN_THIS_WEEK or this <= mean:
            continue
        growth = (this - mean) / mean if mean > 0 else None  # None = new this week
        out.append({"id": s.id, "label": s.label, "this_week": this, "baseline": round(mean, 2),
                    "growth": None if growth is None else round(growth, 3), "score": round(score, 3),
                    "upvotes": s.upvotes[-1]})
    out.sort(key=lambda r: (-r["score"], r["id"]))
    return out[:top]


def growth_text(row: dict) -> str:
    """"+150%" or "new" for a rising row."""
    return "new" if row["growth"] is None else f"+{row['growth'] * 100:.0f}%"


def digest_rising(conn: sqlite3.Connection) -> tuple[date, list[dict], bytes] | None:
    """(Monday of the week, rising rows, the chart as PNG) for the weekly digest, which embeds
    the chart in the mail; None when there is no map or nothing rose (no chart then)."""
    from paperwire.store.meta import table_exists
    from paperwire.topics.charts import rising_png

    if not table_exists(conn, "topic_map_points") or not sql.point_count(conn):
        return None
    tr = weekly(conn)
    if tr.empty or not tr.rising:
        return None
    return tr.weeks[-1], tr.rising, rising_png(tr)
