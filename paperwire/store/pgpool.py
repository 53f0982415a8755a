"""Surviving a PostgreSQL restart: the pool and the lost-connection rules of
:class:`paperwire.store.dialect.PgConnection` (PostgreSQL only; psycopg is imported lazily).

What happens when the server restarts or the network goes away:

* A connection a :class:`PgConnection` holds (a web thread keeps one for its lifetime)
  fails its next statement with ``psycopg.OperationalError`` and is then ``closed``.
  :func:`run` hands it back to the pool (which discards it) and the next statement takes a
  fresh one, so the holder heals by itself. A read outside a transaction (``SELECT``)
  that met a dead connection is run once more on a fresh one: after a restart nobody sees
  the stale connections. Anything else is not retried, because it may have run.
* A connection lost *inside* a transaction leaves that transaction gone: every statement
  but ``ROLLBACK`` raises until the caller rolls back (``transaction()`` always does), so a
  later ``COMMIT`` can never report success for writes the server never kept.
* The pool's own reconnect attempts back off exponentially (1, 2, 4, ... s), so after a
  minute's outage the next attempt could come a minute later. :func:`pool_class` caps the
  wait between attempts at :data:`RETRY_MAX_S`: the node is back within seconds.
* While the store is known to be down, asking for a connection fails at once for
  :data:`FAIL_FAST_S` after the last failed attempt, and then waits at most
  :data:`RECOVER_TIMEOUT_S` (on an event loop thread: only takes a ready one): a web
  request answers 503 quickly instead of holding a thread for the pool's full 30 s.
"""

from __future__ import annotations

import asyncio
import threading
import time

RETRY_MAX_S = 1.0  # longest wait between the pool's reconnect attempts (effectively <= 2x this)
FAIL_FAST_S = 1.0  # after a failed attempt, fail without waiting for this long
RECOVER_TIMEOUT_S = 2.0  # the longest wait for a connection while the store is known to be down

_DOWN: dict[str, float] = {}  # url -> monotonic time until which getting a connection fails at once
_DOWN_LOCK = threading.Lock()


def pool_class():
    """psycopg_pool's ConnectionPool with the wait between reconnect attempts capped."""
    from psycopg_pool import ConnectionPool

    class ReconnectingPool(ConnectionPool):
        """A ConnectionPool that retries a lost server at least every 2 * RETRY_MAX_S."""

        def _add_connection(self, attempt=None, *args, **kwargs):
            # AttemptWithBackoff doubles ``delay`` after each failure: cap it before the
            # next doubling (psycopg_pool 3.2/3.3 internals; without them this is a no-op).
            if attempt is not None and getattr(attempt, "delay", 0.0) > RETRY_MAX_S:
                attempt.delay = RETRY_MAX_S
            return super()._add_connection(attempt, *args, **kwargs)

    return ReconnectingPool


def acquire(pool, url: str, timeout: float):
    """A connection from ``pool``; raises (``psycopg_pool.PoolTimeout`` or the like) when
    none comes in time, at once while the store is known to be down."""
    from psycopg_pool import PoolTimeout

    now = time.monotonic()
    until = _DOWN.get(url)
    if until is not None:
        if now < until:
            raise PoolTimeout("the store is unreachable (the last attempt to connect failed just now)")
        # On an event loop (the web's cache fast path) a wait would stall every request of
        # the process, /healthz included: take a connection only if one is ready.
        timeout = min(timeout, 0.05 if _on_event_loop() else RECOVER_TIMEOUT_S)
    try:
        raw = pool.getconn(timeout=timeout)
    except Exception:
        if not _exhausted(pool):  # every connection busy is a full pool, not a store that is down
            mark_down(url)
        raise
    if until is not None:
        with _DOWN_LOCK:
            _DOWN.pop(url, None)
    return raw


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _exhausted(pool) -> bool:
    try:
        stats = pool.get_stats()
    except Exception:  # noqa: BLE001 - no statistics: assume the worst (the store is down)
        return False
    return stats.get("pool_size", 0) >= stats.get("pool_max", 1) and not stats.get("pool_available", 0)


def mark_down(url: str, *, fail_fast: bool = True) -> None:
    """Remember that ``url`` just failed: callers then wait at most :data:`RECOVER_TIMEOUT_S`
    for a connection and, with ``fail_fast`` (a failed attempt to connect, not just a lost
    connection), fail at once for :data:`FAIL_FAST_S`."""
    now = time.monotonic()
    with _DOWN_LOCK:
        _DOWN[url] = max(_DOWN.get(url, now), now + FAIL_FAST_S if fail_fast else now)


def is_down(url: str) -> bool:
    """Whether the last attempt to reach ``url`` failed (and nothing succeeded since)."""
    return url in _DOWN


def _reacquire(conn):
    from paperwire.store import dialect

    try:
        conn._raw = acquire(conn._pool, conn.url, 30)
    except Exception as exc:
        raise dialect._unavailable(conn.url, exc) from None
    return conn._raw


def raw_of(conn):
    """``conn``'s psycopg connection, a fresh one from the pool if it had lost its own."""
    raw = conn._raw
    if raw is None or raw.closed:
        _drop(conn)
        raw = _reacquire(conn)
    return raw


def _drop(conn) -> None:
    raw, conn._raw = conn._raw, None
    if raw is not None:
        try:
            conn._pool.putconn(raw)  # a closed connection is discarded, and the pool replaces it
        except Exception:  # noqa: BLE001 - the pool may be closed already (tests, shutdown)
            pass


def in_transaction(conn) -> bool:
    """Whether a transaction is open (or was lost and not yet rolled back) on ``conn``."""
    if conn._lost_tx:
        return True
    raw = conn._raw
    if raw is None or raw.closed:
        return False
    from psycopg.pq import TransactionStatus

    return raw.info.transaction_status != TransactionStatus.IDLE


def run(conn, q: str, params):
    """Execute the translated statement ``q`` on ``conn`` by the rules above; returns the cursor."""
    import psycopg
    from psycopg.pq import TransactionStatus

    head = q[:64].lstrip()[:8].upper()
    if conn._lost_tx:
        if head.startswith("ROLLBACK"):
            conn._lost_tx = False
            return _ignored()
        raise psycopg.OperationalError("the connection to the store was lost inside a transaction; roll it back")
    raw = conn._raw
    if (raw is None or raw.closed) and head.startswith(("ROLLBACK", "COMMIT")):
        if head.startswith("COMMIT"):  # whatever that transaction wrote went with the connection
            raise psycopg.OperationalError("the connection to the store was lost before COMMIT")
        return _ignored()
    raw = raw_of(conn)
    idle = raw.info.transaction_status == TransactionStatus.IDLE
    try:
        return raw.execute(q, params)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        if not raw.closed:
            raise  # a statement timeout, a deadlock...: the connection itself is fine
        _drop(conn)
        mark_down(conn.url, fail_fast=False)
        if head.startswith("ROLLBACK"):
            return _ignored()  # nothing is left to roll back
        if not idle:
            conn._lost_tx = True
            raise
        if not head.startswith("SELECT"):
            raise  # it may have run before the connection went: never run a write twice
    return _reacquire(conn).execute(q, params)


def _ignored():
    """What a statement there was nothing to run for returns (an empty cursor)."""
    from paperwire.store.dialect import _EmptyCursor

    return _EmptyCursor()
