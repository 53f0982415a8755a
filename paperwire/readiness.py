"""Is this node ready to serve? The store answers, and the node's own index replicas
reflect the store's revision (``/readyz``, and the index lag gauges of ``/metrics``).

A node answers searches from replicas it keeps itself: on PostgreSQL the tantivy
lexical replica (:mod:`paperwire.index.fastlex`, following the store revision ``rev``),
and on both engines the vector indexes a process has loaded
(:func:`paperwire.index.vectors.shared_index`, with their ``rev`` and embedding ``seq``).
Both catch up by themselves before they answer; readiness asks them to catch up *now*
(in the background, one run at a time) and says "not ready" until they have, so a load
balancer keeps traffic off a node that is still building its replica. The store's own
lexical index (FTS5 on SQLite) is brought up by ``paperwire index`` or a worker: its lag
is reported, never waited for, since no node can shorten it.

The index modules are read defensively (``getattr``): they are caches whose internals
may change, and a readiness probe must answer whatever they look like.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Callable

from paperwire.store import health
from paperwire.store.dialect import is_postgres

log = logging.getLogger(__name__)

READY_WAIT_S = 1.0  # how long a probe waits for the node's indexes to catch up before saying 503


def index_state(conn, rev: int) -> dict:
    """``{name: {"rev", "lag", "node"}}`` for the indexes a node answers from.

    ``node`` indexes are this node's replicas, which ``/readyz`` waits for: the tantivy
    replica on PostgreSQL (``tantivy``; it follows the store revision) and every vector
    index this process has loaded (``vectors:<model>``; its rev, and its embedding write
    sequence behind the store's as ``seq_lag``). ``lexical`` is the store's own lexical
    index (FTS5 on SQLite), brought up by ``paperwire index`` or a worker: its lag is a job
    backlog, shown but not waited for."""
    out: dict = {}
    lexical = health.lexical_rev(conn)
    out["lexical"] = {"rev": lexical, "lag": max(0, rev - lexical), "node": False}
    if is_postgres(conn):
        from paperwire.index import fastlex

        idx = fastlex.open_index(conn)
        if idx is not None:
            have = int(idx.stored_rev())
            out["tantivy"] = {"rev": have, "lag": max(0, rev - have), "node": True}
    for model, idx in _loaded_vector_indexes(conn):
        name = f"vectors:{model}"
        have = int(getattr(idx, "rev", 0))
        entry = {"rev": have, "lag": max(0, rev - have), "node": True}
        try:
            from paperwire.store.embeddings import model_seq

            entry["seq_lag"] = max(0, model_seq(conn, model) - int(getattr(idx, "seq", 0)))
        except (ImportError, AttributeError):
            pass
        prev = out.get(name)
        if prev is None or entry["lag"] + entry.get("seq_lag", 0) > prev["lag"] + prev.get("seq_lag", 0):
            out[name] = entry
    return out


def _loaded_vector_indexes(conn) -> list:
    """(model, index) for the vector indexes this process holds for this store (none loaded:
    searches have not needed one yet, and there is nothing to be behind)."""
    vectors = sys.modules.get("paperwire.index.vectors")
    shared = getattr(vectors, "_SHARED", None) if vectors is not None else None
    if not shared:
        return []
    from paperwire.store.meta import database_file

    db = database_file(conn)
    found = []
    for key, idx in list(shared.items()):
        if isinstance(key, tuple) and len(key) >= 2 and key[0] == db:
            found.append((str(key[1]), idx))
    return found


def behind(state: dict) -> dict:
    """The node indexes of an :func:`index_state` that are behind, with their lag."""
    return {name: {"lag": s["lag"], **({"seq_lag": s["seq_lag"]} if s.get("seq_lag") else {})}
            for name, s in state.items() if s["node"] and (s["lag"] or s.get("seq_lag"))}


class _CatchUp:
    """One background catch-up of a store's replicas at a time (a first tantivy build can
    take minutes: a readiness probe must not hold a request that long)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}

    def kick(self, target) -> threading.Thread:
        """Start catching up the replicas of the store ``target`` (unless that runs already)."""
        key = str(target)
        with self._lock:
            thread = self._threads.get(key)
            if thread is None or not thread.is_alive():
                thread = self._threads[key] = threading.Thread(target=self._run, args=(target,),
                                                               name="paperwire-catch-up", daemon=True)
                thread.start()
            return thread

    @staticmethod
    def _run(target) -> None:
        from paperwire.store.db import connect

        try:
            conn = connect(target, migrate_schema=False)
            try:
                if is_postgres(conn):
                    from paperwire.index import fastlex

                    fastlex.update_fast(conn)  # on PostgreSQL: follow the store up to its rev
                vectors = sys.modules.get("paperwire.index.vectors")
                for key in [k for k in list(getattr(vectors, "_SHARED", {})) if isinstance(k, tuple) and len(k) == 4]:
                    _db, model, kind, include_hidden = key
                    vectors.shared_index(conn, model, kind=kind, include_hidden=include_hidden)  # refreshes if stale
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - /readyz reports what is still behind
            log.warning("catching the node's indexes up failed: %s", health.store_down_reason(exc) or repr(exc)[:300])


CATCH_UP = _CatchUp()


def readiness(conn_of: Callable[[], object], target, wait: float = READY_WAIT_S) -> tuple[int, dict]:
    """(status, body) for ``/readyz``: 200 when the store answers and this node's indexes
    reflect the store revision read at the start of the probe (writes committed during the
    probe do not count against it); else 503 saying what is unreachable or behind. A node
    that is behind starts catching up (on its own connection to ``target``) and waits up to
    ``wait`` seconds for it. ``conn_of`` gives the caller's connection (it may raise when
    the store is down: that is an answer too)."""
    try:
        conn = conn_of()
        rev = health.store_rev(conn)
        state = index_state(conn, rev)
        if behind(state):
            CATCH_UP.kick(target).join(wait)
            state = index_state(conn, rev)
    except Exception as exc:  # noqa: BLE001 - readiness answers, whatever went wrong
        reason = health.store_down_reason(exc)
        if reason is None:
            log.warning("readiness: %s", repr(exc)[:300])
        return 503, {"ready": False, "store": "unreachable" if reason else "error"}
    late = behind(state)
    body = {"ready": not late, "store": "ok", "rev": rev, "indexes": state}
    if late:
        body["behind"] = late
        return 503, body
    return 200, body
