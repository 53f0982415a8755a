"""The topic map's place in ``paperwire worker``: refit weekly, place new papers every tick.

* ``map-build`` once per ISO week (``worker_jobs`` records it, like the digests): a full refit,
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

from paperwire.store import digest as jobs
from paperwire.store.db import transaction

log = logging.getLogger("paperwire.worker")
RETRY_AFTER = timedelta(hours=6)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mappable(conn: sqlite3.Connection) -> bool:
    from paperwire.store import embeddings as store_emb
    from paperwire.topics import map as topic_map

    model = topic_map.choose_model(conn)
    return bool(model) and store_emb.embedding_count(conn, model) >= topic_map.MIN_PAPERS


def tick(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """One scheduler pass for the map; returns log lines (empty when there was nothing to do)."""
    from paperwire.topics import map as topic_map

    year, week, _ = now.isocalendar()
    period = f"{year}-W{week:02d}"
    row = jobs.get_job(conn, "map-build", period)
    due = row is None or (row["state"] not in ("done", "skipped") and
                          now - datetime.strptime(row["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
                              tzinfo=now.tzinfo) >= RETRY_AFTER)
    if due and not _mappable(conn):
        return []  # too few embedded papers: nothing recorded, so the week's build runs once they arrive
    if due:
        with transaction(conn):
            jobs.start_job(conn, "map-build", period, _iso(now))
        try:
            summary = topic_map.build_map(conn)
        except topic_map.MapUnavailable as exc:  # the map extra is missing: not an error
            with transaction(conn):
                jobs.finish_job(conn, "map-build", period, "skipped", _iso(now), str(exc)[:500])
            return [f"map-build {period}: skipped ({exc})"]
        except Exception as exc:  # a failed refit keeps the old map; retried after RETRY_AFTER
            log.exception("map build failed")
            with transaction(conn):
                jobs.finish_job(conn, "map-build", period, "failed", _iso(now), f"{type(exc).__name__}: {exc}"[:500])
            return [f"map-build {period}: failed ({type(exc).__name__}: {exc})"]
        with transaction(conn):
            jobs.finish_job(conn, "map-build", period, "done", _iso(now),
                            f"{summary['points']} points in {summary['total_s']} s")
        return [f"map-build {period}: {summary['points']} points, {summary['coarse_clusters']} topics "
                f"in {summary['total_s']} s"]
    placed = topic_map.place_new(conn)
    return [f"map: placed {placed['placed']} new papers"] if placed.get("placed") else []
