"""Keep a node's index replicas current with a PostgreSQL store: LISTEN/NOTIFY, with polling.

On PostgreSQL every web node keeps its own lexical (tantivy) and vector replicas, built
from the store and caught up from its change log (``rev``). A search already catches
the replicas up before it answers (:func:`paperwire.index.fastlex.fast_ready`,
:func:`paperwire.index.vectors.shared_index`), so a paper is never missed. This follower
makes that catch-up happen *before* the next search, not during it: a trigger on
``meta`` (migration ``m0800``) sends ``NOTIFY paperwire_rev`` at every commit that moves
the revision, through any node, worker or command, and the follower's listening
connection wakes and catches up at once. Notifications are lost while the listening
connection is down, so the follower also polls every ``poll_s`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("paperwire.follow")
CHANNEL = "paperwire_rev"
DEFAULT_POLL_S = 5.0

_STARTED: dict[str, "RevFollower"] = {}
_STARTED_LOCK = threading.Lock()


def catch_up(conn) -> dict:
    """Bring this process's lexical and vector replicas up to the store revision; returns revs."""
    from paperwire.index import fastlex
    from paperwire.store import search as sql

    out: dict = {"store_rev": sql.store_rev(conn)}
    idx = fastlex.fast_ready(conn)
    out["lexical_rev"] = idx.stored_rev() if idx is not None else None
    model = sql.get_state(conn, "model")
    if model:
        from paperwire.index.vectors import shared_index

        out["vector_rev"] = shared_index(conn, model).rev
    return out


class RevFollower(threading.Thread):
    """A daemon thread: LISTEN on the store's change channel, catch up on each notification
    and every ``poll_s`` seconds in any case; reconnects by itself after an outage."""

    def __init__(self, url: str, *, poll_s: float = DEFAULT_POLL_S):
        super().__init__(name="paperwire-follow", daemon=True)
        self.url, self.poll_s = url, poll_s
        self.stopping = threading.Event()
        self.wakeups = 0  # notifications and polls handled (tests, /metrics)
        self.notified = 0  # of which notifications

    def stop(self) -> None:
        """Ask the thread to end (it does within ``poll_s``)."""
        self.stopping.set()

    def run(self) -> None:
        import psycopg

        down_logged = False
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                     application_name="paperwire follow") as listen:
                    listen.execute(f"LISTEN {CHANNEL}")
                    if down_logged:
                        log.info("store reachable again: following its changes")
                        down_logged = False
                    self._catch_up()  # whatever happened while we were not listening
                    while not self.stopping.is_set():
                        got = 0
                        for _ in listen.notifies(timeout=self.poll_s, stop_after=1):
                            got += 1
                        self.notified += got
                        self._catch_up()
            except psycopg.Error as exc:
                if not down_logged:
                    log.warning("change follower: store unavailable (%s); polling until it is back",
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    down_logged = True
                self.stopping.wait(self.poll_s)

    def _catch_up(self) -> None:
        from paperwire.store.db import connect

        self.wakeups += 1
        try:
            conn = connect(self.url, migrate_schema=False)
        except Exception:  # noqa: BLE001 - the outer loop notices the store being down
            return
        try:
            catch_up(conn)
        except Exception as exc:  # noqa: BLE001 - a replica problem must not kill the follower
            log.warning("catching the index replicas up failed: %s", exc)
        finally:
            conn.close()


def start(db: object, *, poll_s: float | None = None) -> RevFollower | None:
    """Start this process's follower for the PostgreSQL store ``db`` (once); None for SQLite,
    whose FTS5 index lives in the database file itself."""
    import os

    from paperwire.store.dialect import is_url

    if not is_url(db):
        return None
    url = str(db)
    with _STARTED_LOCK:
        follower = _STARTED.get(url)
        if follower is None or not follower.is_alive():
            poll = poll_s if poll_s is not None else float(os.environ.get("PAPERWIRE_FOLLOW_POLL_S", DEFAULT_POLL_S))
            follower = _STARTED[url] = RevFollower(url, poll_s=poll)
            follower.start()
        return follower


def stop_all(timeout: float = 2.0) -> None:
    """Stop every follower of this process (tests)."""
    with _STARTED_LOCK:
        followers = list(_STARTED.values())
        _STARTED.clear()
    deadline = time.monotonic() + timeout
    for f in followers:
        f.stop()
    for f in followers:
        f.join(max(0.0, deadline - time.monotonic()))
