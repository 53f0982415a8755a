"""The topic map's place in ``paperwire worker``: refit weekly, place new papers every tick.

* ``map-build`` once per ISO week (a leased job in ``worker_jobs``, like the digests): a full refit,
  so the layout and labels follow the corpus as it grows;
* between refits, each tick puts papers that got an embedding since on the map
  (:func:`paperwire.topics.map.place_new`, cheap: a dot product against the fitted sample).

A store too small for a map, or without the ``map`` extra, is skipped with a log line: the
worker's other jobs (digests, sync, outbox) never wait on it.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta

from paperwire import jobs
from paperwire.store import jobs as job_rows

log = logging.getLogger("paperwire.worker")
RETRY_AFTER = timedelta(hours=6)
_OWNER = jobs.worker_name()


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mappable(conn: sqlite3.Connection) -> bool:
    from paperwire.store import embeddings as store_emb
    from paperwire.topics import map as topic_map

    model = topic_map.choose_model(conn)
    return bool(model) and store_emb.embedding_count(conn, model) >= topic_map.MIN_PAPERS


def tick(conn: sqlite3.Connection, now: datetime, *, db: object | None = None, owner: str | None = None,
         lease_s: float = jobs.DEFAULT_LEASE_S) -> list[str]:
    """One scheduler pass for the map; returns log lines (empty when there was nothing to do).

    The weekly refit and the placing of new papers are leased jobs (:mod:`paperwire.jobs`):
    with several workers, one refits while the others skip it. ``db`` is the store the
    lease heartbeat connects to (the worker passes its ``--db``), ``owner`` the worker's name.
    """
    from paperwire.store.meta import database_file
    from paperwire.topics import map as topic_map

    db = db if db is not None else (getattr(conn, "url", None) or database_file(conn) or ":memory:")
    owner = owner or _OWNER
    year, week, _ = now.isocalendar()
    period = f"{year}-W{week:02d}"
    row = job_rows.get(conn, "map-build", period)
    if row is not None and row["state"] in ("done", "skipped") or not _mappable(conn):
        lease = None  # built (or skipped) this week; or too few embedded papers: nothing recorded yet
    else:
        lease = jobs.claim(conn, db, "map-build", period, owner, lease_s=lease_s, retry_after=RETRY_AFTER, now=now)
    if lease is not None:
        with lease:
            try:
                summary = topic_map.build_map(conn)
            except topic_map.MapUnavailable as exc:  # the map extra is missing: not an error
                lease.finish(conn, "skipped", str(exc)[:500], now=now)
                return [f"map-build {period}: skipped ({exc})"]
            except Exception as exc:  # a failed refit keeps the old map; retried after RETRY_AFTER
                log.exception("map build failed")
                lease.finish(conn, "failed", f"{type(exc).__name__}: {exc}"[:500], now=now)
                return [f"map-build {period}: failed ({type(exc).__name__}: {exc})"]
            lease.finish(conn, "done", f"{summary['points']} points in {summary['total_s']} s", now=now)
        return [f"map-build {period}: {summary['points']} points, {summary['coarse_clusters']} topics "
                f"in {summary['total_s']} s"]
    if row is None or row["state"] != "done":
        return []
    placing = jobs.claim(conn, db, "map-place", "-", owner, lease_s=lease_s, recurring=True, now=now)
    if placing is None:
        return []  # another worker is placing right now
    with placing:
        placed = topic_map.place_new(conn)
        placing.finish(conn, "done", f"placed {placed.get('placed', 0)}", now=now)
    return [f"map: placed {placed['placed']} new papers"] if placed.get("placed") else []
