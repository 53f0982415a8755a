"""Leased jobs: how any number of ``paperwire worker`` processes share the scheduled work.

Each job (a digest period, a day's harvest, indexing, the weekly map) is claimed with a
lease in the store (:mod:`paperwire.store.jobs`). While the job runs, a heartbeat thread
renews the lease every third of its length, on a connection of its own. A worker that is
killed stops renewing; once the lease has run out the next worker's tick claims the job
and runs it again, and the job's own bookkeeping (the digest ledger, the harvest resume
marks, the content-hash keyed embeddings) makes that second run finish the first one's
work without doing any of it twice.

Lease times come from each worker's own clock (keep the nodes' clocks in sync, as NTP
does): the scheduling "now" can be pretended (``paperwire worker --now``), leases never.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta, timezone

from paperwire.store import jobs as sql
from paperwire.store.db import StoreUnavailable, connect

log = logging.getLogger("paperwire.jobs")
DEFAULT_LEASE_S = 60.0


def worker_name() -> str:
    """This process's name in ``worker_jobs.owner``: host, pid and a random tag (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wall() -> datetime:
    return datetime.now(timezone.utc)


class Lease:
    """A claimed job. Use as a context manager: the heartbeat runs inside the block.

    ``lost`` is set when a renewal found the row taken over (this worker was presumed
    dead); the job should then stop at its next safe point.
    """

    def __init__(self, db: object, job: str, period: str, owner: str, seconds: float):
        self.db, self.job, self.period, self.owner, self.seconds = db, job, period, owner, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Lease":
        self._thread = threading.Thread(target=self._beat, name=f"lease {self.job}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)

    def _beat(self) -> None:
        conn = None
        try:
            while not self._stop.wait(self.seconds / 3):
                try:
                    if conn is None:
                        conn = connect(self.db, migrate_schema=False)
                    until = _iso(_wall() + timedelta(seconds=self.seconds))
                    if not sql.renew(conn, self.job, self.period, self.owner, until):
                        log.warning("lease on %s %s was taken over; stopping at the next safe point",
                                    self.job, self.period)
                        self.lost.set()
                        return
                except (StoreUnavailable, Exception) as exc:  # noqa: BLE001 - keep beating; the store may come back
                    log.warning("could not renew the lease on %s %s: %s", self.job, self.period,
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    if conn is not None:
                        try:
                            conn.close()
                        except Exception:  # noqa: BLE001
                            pass
                        conn = None
        finally:
            if conn is not None:
                conn.close()

    def finish(self, conn, state: str, detail: str = "", now: datetime | None = None) -> bool:
        """Record the outcome (done / failed / skipped) and drop the lease."""
        self._stop.set()
        return sql.finish(conn, self.job, self.period, self.owner, state, _iso(now or _wall()), detail)


def claim(conn, db: object, job: str, period: str, owner: str, *, lease_s: float = DEFAULT_LEASE_S,
          retry_after: timedelta = timedelta(minutes=5), recurring: bool = False,
          now: datetime | None = None) -> Lease | None:
    """Claim ``(job, period)`` for ``owner``; a :class:`Lease` when it is ours, else None.

    ``now`` is the scheduling clock (it decides whether a failed run is retried yet);
    the lease deadline is always on the wall clock.
    """
    wall = _wall()
    sched = now or wall
    ok = sql.claim(conn, job, period, owner, started_at=_iso(sched), now=_iso(wall), lease_until=_iso(wall + timedelta(seconds=lease_s)),
                   retry_before=_iso(sched - retry_after), recurring=recurring)
    return Lease(db, job, period, owner, lease_s) if ok else None
