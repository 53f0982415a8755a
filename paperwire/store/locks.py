"""Exclusive locks that hold across processes and nodes, one spelling per engine.

What differs between the engines for locking lives here (the SQL spelling differences
live in :mod:`paperwire.store.dialect`):

* **Named exclusive locks** (one digest sender per kind of mail, one harvest per store):
  on SQLite an ``flock`` on a file next to the database; on PostgreSQL a session-level
  advisory lock held on a connection of its own. Both are released by the system when
  the holder dies (the kernel drops the flock; the server ends the session when the
  socket closes), so a SIGKILLed process never blocks the next one.
* **Row claims** (job leases, :mod:`paperwire.store.jobs`): ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, so a worker never waits for a row another worker is claiming; nothing on
  SQLite, where ``BEGIN IMMEDIATE`` already serialises every writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import Iterator

from paperwire.store.dialect import StoreUnavailable, is_postgres, is_url


class LockBusy(RuntimeError):
    """Another process holds the named lock."""


def skip_locked(conn) -> str:
    """The clause that ends a ``SELECT`` of rows to claim: skip rows another claimer holds."""
    return " FOR UPDATE SKIP LOCKED" if is_postgres(conn) else ""


def serialise_transaction(conn, name: str) -> None:
    """Inside an open write transaction, queue behind every other transaction that serialises
    on ``name`` until this one ends (a read-then-write such as "count, then insert if under
    the limit" must not interleave).

    PostgreSQL: a transaction-level advisory lock, released at commit or rollback (READ
    COMMITTED would let two transactions both count 4 of 5 and both insert). SQLite: nothing
    to do, ``BEGIN IMMEDIATE`` already holds the database's one write lock.
    """
    if is_postgres(conn):
        conn.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(None, name),))


def advisory_key(db: object, name: str) -> int:
    """A stable signed 64-bit key for the lock ``name`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"paperwire:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def exclusive(db: object, name: str, *, timeout: float = 0.0, busy: str | None = None) -> Iterator[None]:
    """Hold the store-wide lock ``name`` for the duration of the block.

    ``db`` is what :func:`paperwire.store.db.connect` takes (a SQLite path or a
    ``postgresql://`` URL). Waits up to ``timeout`` seconds, then raises
    :class:`LockBusy` with ``busy`` (or a default message).
    """
    message = busy or f"another process holds the {name} lock"
    if str(db) == ":memory:":
        yield
        return
    if is_url(db):
        with _advisory(str(db), name, timeout, message):
            yield
        return
    with _flock(db, name, timeout, message):
        yield


@contextlib.contextmanager
def _flock(db: object, name: str, timeout: float, message: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory file locks, run unguarded
        yield
        return
    from paperwire.store.meta import lock_file

    path = Path(lock_file(db, f"{name}.lock"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{message} (lock {path})") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _advisory(url: str, name: str, timeout: float, message: str) -> Iterator[None]:
    # A connection of its own, never a pooled one: a pooled connection handed back with
    # the lock still held would keep it for whoever borrows it next.
    import psycopg

    from paperwire.store.dialect import _unavailable

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5, application_name=f"paperwire lock {name}")
    except (psycopg.Error, ValueError) as exc:
        raise _unavailable(url, exc) from None
    key = advisory_key(url, name)
    try:
        deadline = time.monotonic() + timeout
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise LockBusy(message)
            time.sleep(0.05)
        yield
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error:
            pass  # the session is gone, and the lock with it
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"lost the connection holding the {name} lock: {str(exc).splitlines()[0]}") from None
    finally:
        conn.close()
