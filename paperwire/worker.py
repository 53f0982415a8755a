"""The built-in scheduler behind ``paperwire worker``.

Every tick (default 60 s) it:

* sends the daily digests once the local time passes ``settings.digest_hour``, and the
  weekly ones from ``digest_weekday`` at that hour (a worker that was down catches up
  later the same day / ISO week);
* runs the freshness job ``paperwire.sync.run_sync(conn, settings)`` once a day after
  ``settings.sync_hour`` when the harvest area provides it (skipped with a log line
  otherwise);
* delivers anything left in the outbox (confirmation mails queued by the web form,
  digests waiting for a retry).

* brings the search index, embeddings and similar-paper lists up to date when the store
  changed since the last indexing run (papers imported by any node or command).

Any number of workers may run, on any number of nodes: each job (a digest period, a
day's sync, indexing) is claimed with a lease in the store (:mod:`paperwire.jobs`), so one
worker runs it while the others skip it; a killed worker's lease runs out and the next
tick elsewhere takes the job over. The digest ledger and the store-wide delivery lock
make a repeated or crashed run harmless anyway. The worker can be stopped (SIGTERM/SIGINT)
between steps, or killed at any moment.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from paperwire import jobs
from paperwire.digest import periods
from paperwire.digest.send import DigestBusy, SmtpConfigError, deliver_due, run_digests
from paperwire.settings import Settings
from paperwire.store import jobs as job_rows
from paperwire.store.db import connect

log = logging.getLogger("paperwire.worker")
SYNC_RETRY_AFTER = timedelta(minutes=30)


def _iso(dt: datetime) -> str:
    return periods.utc_iso(dt)


def _claim(conn, settings: Settings, job: str, period: str, now: datetime, retry_after: timedelta,
           *, recurring: bool = False) -> jobs.Lease | None:
    return jobs.claim(conn, settings.db_path, job, period, _owner(settings), lease_s=settings.job_lease_s,
                      retry_after=retry_after, recurring=recurring, now=now)


_OWNERS: dict[int, str] = {}


def _owner(settings: Settings) -> str:
    # One name per worker process (and per Settings, so tests can run two in one process).
    return _OWNERS.setdefault(id(settings), jobs.worker_name())


def tick(conn: sqlite3.Connection, settings: Settings, now: datetime | None = None) -> list[str]:
    """One pass of the scheduler; returns what it did, as log lines."""
    now = now or datetime.now(timezone.utc)
    did: list[str] = []
    for freq in periods.FREQUENCIES:
        if not periods.is_due(freq, now, hour=settings.digest_hour, weekday=settings.digest_weekday,
                              zone=settings.digest_timezone):
            continue
        period = periods.period_key(freq, now, settings.digest_timezone)
        job = f"digest-{freq}"
        lease = _claim(conn, settings, job, period, now, timedelta(minutes=5))
        if lease is None:
            continue  # done, or another worker holds it
        with lease:
            try:
                report = run_digests(conn, settings, freq, now=now, wait_for_retries=False, lock_timeout=5,
                                     stop=lease.lost.is_set)
            except DigestBusy as exc:
                lease.finish(conn, "failed", str(exc), now=now)
                did.append(f"{job} {period}: {exc}; will retry")
                continue
            except SmtpConfigError as exc:
                lease.finish(conn, "failed", str(exc), now=now)
                did.append(f"{job} {period}: {exc}")
                continue
            if lease.lost.is_set():
                # Presumed dead and taken over: the new owner finishes the period (the ledger
                # keeps each mail to one send) and records the outcome, not us.
                did.append(f"{job} {period}: lease taken over by another worker; stopped: {report.summary()}")
                continue
            # Composition is complete; undelivered rows are retried by every later tick.
            lease.finish(conn, "done", report.summary(), now=now)
        did.append(f"{job}: {report.summary()}")
        for f in report.failed:
            did.append(f"  failed: {f['recipient']}: {f['error']}")
    did += _sync(conn, settings, now)
    did += _index(conn, settings, now)
    did += _topic_map(conn, settings, now)
    for kind in ("confirm", "digest"):
        try:
            r = deliver_due(conn, settings, kind, wait_for_retries=False, lock_timeout=0)
        except (DigestBusy, SmtpConfigError):
            continue
        if r.sent or r.failed or r.notes:
            did.append(f"outbox {kind}: {r.sent} sent, {len(r.failed)} failed, {r.deferred} deferred"
                       + (f" ({r.notes[-1]})" if r.notes else ""))
    from paperwire.discuss.mail import deliver_pending  # reply notifications left queued by the web

    r = deliver_pending(conn, settings, lock_timeout=0)
    if r["sent"] or r["failed"] or r["retry"]:
        did.append(f"reply mail: {r['sent']} sent, {r['failed']} failed, {r['retry']} to retry")
    return did


def _sync(conn: sqlite3.Connection, settings: Settings, now: datetime) -> list[str]:
    local = periods.to_local(now, settings.digest_timezone)
    if local.hour < settings.sync_hour:
        return []
    period = f"{local:%Y-%m-%d}"
    lease = _claim(conn, settings, "sync", period, now, SYNC_RETRY_AFTER)
    if lease is None:
        return []
    try:
        from paperwire.sync import run_sync  # the harvest area's freshness job
    except ImportError as exc:
        lease.finish(conn, "skipped", f"paperwire.sync unavailable: {exc}", now=now)
        return [f"sync {period}: skipped (paperwire.sync.run_sync not available: {exc})"]
    with lease:
        try:
            result = run_sync(conn, settings)
        except Exception as exc:  # a failed harvest must not stop digests; retried later
            log.exception("sync failed")
            lease.finish(conn, "failed", f"{type(exc).__name__}: {exc}", now=now)
            return [f"sync {period}: failed ({type(exc).__name__}: {exc}); retry in 30 min"]
        if lease.lost.is_set():
            return [f"sync {period}: lease taken over by another worker; it records the outcome"]
        if isinstance(result, dict) and result.get("ok") is False:
            # The harvest reports partial failures instead of raising: retry it later.
            errors = "; ".join(map(str, result.get("errors") or []))[:500]
            lease.finish(conn, "failed", errors, now=now)
            return [f"sync {period}: failed ({errors}); retry in 30 min"]
        lease.finish(conn, "done", str(result)[:500], now=now)
    return [f"sync {period}: done {str(result)[:200]}"]


def _index(conn: sqlite3.Connection, settings: Settings, now: datetime) -> list[str]:
    """Index what changed since the last indexing run (papers imported or submitted through
    any node or command): lexical replicas, embeddings and similar lists, computed once, by
    whichever worker holds the ``index`` lease. Nodes never embed; they read the vectors."""
    from paperwire.store.search import store_rev

    try:
        from paperwire.sync import update_search_index
    except ImportError:  # pragma: no cover - the harvest area ships with paperwire
        return []
    rev = store_rev(conn)
    last = job_rows.get(conn, "index", "-")
    if last is not None and last["state"] == "done" and (last["detail"] or "").startswith(f"rev {rev} "):
        return []  # nothing new since the last run
    lease = _claim(conn, settings, "index", "-", now, timedelta(minutes=5), recurring=True)
    if lease is None:
        return []
    with lease:
        try:
            report = update_search_index(conn, settings)
        except Exception as exc:  # noqa: BLE001 - retried by a later tick
            log.exception("indexing failed")
            lease.finish(conn, "failed", f"{type(exc).__name__}: {exc}", now=now)
            return [f"index: failed ({type(exc).__name__}: {exc})"]
        if lease.lost.is_set():
            return ["index: lease taken over by another worker; it records the outcome"]
        summary = report if isinstance(report, str) else \
            ", ".join(f"{k} {v}" for k, v in report.items() if k in ("embeddings", "similar", "seconds"))
        lease.finish(conn, "done", f"rev {rev} {summary}"[:500], now=now)
    return [f"index: rev {rev} ({summary[:200]})"]


def _topic_map(conn: sqlite3.Connection, settings: Settings, now: datetime) -> list[str]:
    """Weekly map refit, new papers placed in between (paperwire.topics.schedule)."""
    try:
        from paperwire.topics import schedule
    except ImportError as exc:  # pragma: no cover - the topics package ships with paperwire
        return [f"map: unavailable ({exc})"]
    try:
        return schedule.tick(conn, now, db=settings.db_path, owner=_owner(settings), lease_s=settings.job_lease_s)
    except Exception as exc:  # the map must never stop digests or the outbox
        log.exception("topic map job failed")
        return [f"map: failed ({type(exc).__name__}: {exc})"]


def run_worker(settings: Settings, *, once: bool = False, interval: float = 60.0,
               now_fn: Callable[[], datetime] | None = None, stop: threading.Event | None = None) -> None:
    """Loop :func:`tick` every ``interval`` seconds until SIGTERM/SIGINT (or once)."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    conn = connect(settings.db_path)
    log.info("worker started as %s: digests at %02d:00 (weekly on weekday %d), sync at %02d:00",
             _owner(settings), settings.digest_hour, settings.digest_weekday, settings.sync_hour)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = connect(settings.db_path, migrate_schema=False)
                    log.info("store reachable again")
                for line in tick(conn, settings, now_fn() if now_fn else None):
                    log.info("%s", line)
            except Exception as exc:  # keep the scheduler alive; the next tick retries
                if _store_down(exc):
                    # One line per tick, not a traceback: PostgreSQL restarting is not a bug.
                    log.warning("store unavailable, retrying next tick: %s", str(exc).splitlines()[0])
                    conn = _drop(conn)
                else:
                    log.exception("worker tick failed")
            if once:
                break
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        _drop(conn)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("worker stopped")


def _store_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the store cannot be reached (rather than a bug)."""
    from paperwire.store.db import StoreUnavailable

    if isinstance(exc, StoreUnavailable):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def _drop(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close
            pass
    return None
