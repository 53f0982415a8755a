"""SQL for the topic map (tables from ``m0600_topic_map``): points, clusters, trends counts.

The library code is :mod:`paperwire.topics`; this module only reads and writes rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime, timezone
from typing import Iterable, Sequence

from paperwire.store.db import transaction
from paperwire.store.embeddings import model_seq
from paperwire.store.meta import get_meta, set_meta
from paperwire.store.papers import current_rev

_CHUNK = 500
META_PREFIX = "topic_map."


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _bump_web_rev(conn: sqlite3.Connection) -> None:
    # Page caches are keyed on (rev, web_rev): a new or grown map must not be served stale.
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='web_rev'")


def replace_map(conn: sqlite3.Connection, points: Iterable[tuple], clusters: Sequence[dict], meta: dict) -> int:
    """Swap in a whole new map in one transaction.

    ``points``: ``(paper rowid, x, y, coarse, fine, fitted)``; ``clusters``: dicts with
    ``level, id, parent, label, terms (list), size, x, y``; ``meta``: saved as ``topic_map.<key>``.
    Returns the number of points written.
    """
    now = _now()
    with transaction(conn):
        conn.execute("DELETE FROM topic_map_points")
        conn.execute("DELETE FROM topic_clusters")
        before = conn.total_changes
        conn.executemany(
            "INSERT INTO topic_map_points (paper, x, y, coarse, fine, fitted, placed_at) VALUES (?,?,?,?,?,?,?)",
            ((int(p), float(x), float(y), int(c), int(f), int(fit), now) for p, x, y, c, f, fit in points),
        )
        written = conn.total_changes - before
        conn.executemany(
            "INSERT INTO topic_clusters (level, id, parent, label, terms, size, x, y) VALUES (?,?,?,?,?,?,?,?)",
            ((c["level"], int(c["id"]), c.get("parent"), c["label"], json.dumps(list(c["terms"])), int(c["size"]),
              float(c["x"]), float(c["y"])) for c in clusters),
        )
        for key, value in meta.items():
            set_meta(conn, META_PREFIX + key, json.dumps(value))
        _bump_web_rev(conn)
    return written


def add_points(conn: sqlite3.Connection, points: Iterable[tuple]) -> int:
    """Place papers on an existing map (``fitted = 0``) and refresh the cluster sizes."""
    now = _now()
    points = [(int(p), float(x), float(y), int(c), int(f)) for p, x, y, c, f in points]
    with transaction(conn):
        replaced = []
        ids = [p[0] for p in points]
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            replaced += conn.execute(f"SELECT paper, coarse, fine FROM topic_map_points "
                                     f"WHERE paper IN ({','.join('?' * len(part))})", part).fetchall()
        before = conn.total_changes
        conn.executemany(
            "INSERT OR REPLACE INTO topic_map_points (paper, x, y, coarse, fine, fitted, placed_at) "
            "VALUES (?,?,?,?,?,0,?)",
            ((p, x, y, c, f, now) for p, x, y, c, f in points),
        )
        written = conn.total_changes - before
        if written:
            _bump_web_rev(conn)
            # The sizes move by what this batch added and (for papers placed again) took away:
            # a recount would scan every point, ~10 s per batch at 1M papers.
            delta: Counter = Counter()
            for paper, coarse, fine in replaced:
                delta["coarse", int(coarse)] -= 1
                delta["fine", int(fine)] -= 1
            for p, _x, _y, coarse, fine in points:
                delta["coarse", int(coarse)] += 1
                delta["fine", int(fine)] += 1
            conn.executemany("UPDATE topic_clusters SET size = size + ? WHERE level=? AND id=?",
                             ((n, level, cid) for (level, cid), n in sorted(delta.items()) if n))
    return written


def placement_mark(conn: sqlite3.Connection, model: str) -> list[int]:
    """``[store rev, model's vector seq]`` now: papers changed or embedded after it are the
    only ones a later :func:`unplaced_papers` call (``since=``) needs to look at."""
    return [current_rev(conn), model_seq(conn, model)]


def map_meta(conn: sqlite3.Connection) -> dict:
    """Everything saved under ``topic_map.*`` in ``meta`` (decoded JSON)."""
    out = {}
    for key, value in conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (META_PREFIX + "%",)):
        try:
            out[key[len(META_PREFIX):]] = json.loads(value)
        except ValueError:
            out[key[len(META_PREFIX):]] = value
    return out


def get_map_value(conn: sqlite3.Connection, key: str, default=None):
    raw = get_meta(conn, META_PREFIX + key)
    return default if raw is None else json.loads(raw)


def point_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM topic_map_points").fetchone()[0]


def fitted_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM topic_map_points WHERE fitted=1").fetchone()[0]


def fitted_points(conn: sqlite3.Connection) -> list[tuple[int, float, float]]:
    """``(paper rowid, x, y)`` of the fitted sample, by rowid."""
    return conn.execute("SELECT paper, x, y FROM topic_map_points WHERE fitted=1 ORDER BY paper").fetchall()


def unplaced_papers(conn: sqlite3.Connection, model: str, limit: int | None = None,
                    since: Sequence[int] | None = None) -> list[int]:
    """Rowids of visible papers that have a ``model`` vector but no map point yet.

    ``since`` (a :func:`placement_mark`) looks only at papers changed after its store rev or
    whose vector was written after its seq, through the ``papers_rev`` and ``embeddings_seq``
    indexes: the work follows what is new, not the size of the store. Without it, every
    paper is checked (``map status``, and maps built before marks were kept)."""
    params: list = [model]
    where = "p.hidden=0"
    if since is not None:
        where += (" AND p.id IN (SELECT id FROM papers WHERE rev > ? UNION "
                  "SELECT q.id FROM embeddings f JOIN papers q ON q.content_hash=f.content_hash "
                  "WHERE f.model=? AND f.seq > ?)")
        params += [int(since[0]), model, int(since[1])]
    sql = ("SELECT p.id FROM papers p JOIN embeddings e ON e.model=? AND e.content_hash=p.content_hash "
           f"WHERE {where} AND NOT EXISTS (SELECT 1 FROM topic_map_points t WHERE t.paper=p.id) ORDER BY p.id")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [r[0] for r in conn.execute(sql, params)]


def set_placement_mark(conn: sqlite3.Connection, mark: Sequence[int]) -> None:
    """Remember that every paper up to ``mark`` has been considered for the map."""
    with transaction(conn):
        set_meta(conn, META_PREFIX + "placed_mark", json.dumps([int(mark[0]), int(mark[1])]))


def points_page(conn: sqlite3.Connection, after: int, limit: int) -> list[sqlite3.Row]:
    """Map points with rowid > ``after`` (``rowid, paper_id, x, y, coarse, fine``), by rowid."""
    return conn.execute(
        "SELECT t.paper AS rowid, p.paper_id, t.x, t.y, t.coarse, t.fine FROM topic_map_points t "
        "JOIN papers p ON p.id=t.paper WHERE t.paper > ? AND p.hidden=0 ORDER BY t.paper LIMIT ?",
        (int(after), int(limit)),
    ).fetchall()


def clusters(conn: sqlite3.Connection, level: str | None = None) -> list[dict]:
    """Clusters (``level, id, parent, label, terms, size, x, y``), biggest first."""
    sql = "SELECT level, id, parent, label, terms, size, x, y FROM topic_clusters"
    params: tuple = ()
    if level:
        sql += " WHERE level=?"
        params = (level,)
    out = []
    for r in conn.execute(sql + " ORDER BY level, size DESC, id", params):
        d = dict(r)
        d["terms"] = json.loads(d["terms"])
        out.append(d)
    return out


def paper_texts(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, str]:
    """``rowid -> "title. abstract"`` for labelling."""
    out: dict[int, str] = {}
    ids = [int(r) for r in rowids]
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(part))
        for rid, title, abstract in conn.execute(
                f"SELECT id, title, abstract FROM papers WHERE id IN ({marks})", part):
            out[rid] = f"{title or ''}. {abstract or ''}"
    return out


def rowids_for_paper_ids(conn: sqlite3.Connection, paper_ids: Sequence[str]) -> list[int]:
    """Internal rowids of the given public ids that are on the map (order kept)."""
    found: dict[str, int] = {}
    ids = list(paper_ids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(part))
        for pid, rid in conn.execute(
                f"SELECT p.paper_id, p.id FROM papers p JOIN topic_map_points t ON t.paper=p.id "
                f"WHERE p.paper_id IN ({marks})", part):
            found[pid] = rid
    return [found[p] for p in ids if p in found]


def newest_day_points(conn: sqlite3.Connection, limit: int = 2000) -> tuple[str | None, list[int]]:
    """The newest ``feed_date`` among mapped papers and the rowids listed that day."""
    row = conn.execute("SELECT MAX(p.feed_date) FROM papers p JOIN topic_map_points t ON t.paper=p.id "
                       "WHERE p.hidden=0").fetchone()
    day = row[0] if row else None
    if not day:
        return None, []
    ids = [r[0] for r in conn.execute(
        "SELECT p.id FROM papers p JOIN topic_map_points t ON t.paper=p.id WHERE p.feed_date=? AND p.hidden=0 "
        "ORDER BY p.id LIMIT ?", (day, int(limit)))]
    return day, ids


def library_points(conn: sqlite3.Connection, user_id: int, limit: int = 5000) -> list[int]:
    """Rowids of the reader's saved papers (``library_items``) that are on the map."""
    return [r[0] for r in conn.execute(
        "SELECT l.paper FROM library_items l JOIN topic_map_points t ON t.paper=l.paper WHERE l.user_id=? "
        "ORDER BY l.saved_at DESC LIMIT ?", (int(user_id), int(limit)))]


def daily_cluster_counts(conn: sqlite3.Connection, since_day: str, level: str = "coarse") -> list[tuple]:
    """``(cluster, feed_date, papers, upvotes)`` per cluster and day from ``since_day`` on."""
    col = "coarse" if level == "coarse" else "fine"
    return conn.execute(
        f"SELECT t.{col}, p.feed_date, COUNT(*), COALESCE(SUM(p.upvotes + p.local_upvotes), 0) "
        f"FROM topic_map_points t JOIN papers p ON p.id=t.paper "
        f"WHERE p.hidden=0 AND p.feed_date >= ? GROUP BY t.{col}, p.feed_date", (since_day,),
    ).fetchall()


def newest_feed_date(conn: sqlite3.Connection) -> str | None:
    """The newest ``feed_date`` of a mapped paper (trends are anchored there, not at today)."""
    row = conn.execute("SELECT MAX(p.feed_date) FROM papers p JOIN topic_map_points t ON t.paper=p.id "
                       "WHERE p.hidden=0").fetchone()
    return row[0] if row else None


def points_for_rowids(conn: sqlite3.Connection, rowids: Sequence[int]) -> list[sqlite3.Row]:
    """``rowid, paper_id`` of the given papers that are on the map and visible."""
    out: list[sqlite3.Row] = []
    ids = [int(r) for r in rowids]
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(part))
        out += conn.execute(
            f"SELECT p.id AS rowid, p.paper_id FROM papers p JOIN topic_map_points t ON t.paper=p.id "
            f"WHERE p.hidden=0 AND p.id IN ({marks})", part).fetchall()
    return out
