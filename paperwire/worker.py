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

Each scheduled job runs once per period: ``worker_jobs`` records it, and the digest
ledger makes a repeated or crashed run harmless anyway. The worker can be stopped
(SIGTERM/SIGINT) between steps, or killed at any moment.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from paperwire.digest import periods
from paperwire.digest.send import DigestBusy, SmtpConfigError, deliver_due, run_digests
from paperwire.settings import Settings
from paperwire.store import digest as sql
from paperwire.store.db import connect, transaction

log = logging.getLogger("paperwire.worker")
SYNC_RETRY_AFTER = timedelta(minutes=30)


def _iso(dt: datetime) -> str:
    return periods.utc_iso(dt)


def _job_due(conn: sqlite3.Connection, job: str, period: str, now: datetime,
             retry_after: timedelta | None = None) -> bool:
    row = sql.get_job(conn, job, period)
    if row is None:
        return True
    if row["state"] in ("done", "skipped"):
        return False
    # 'running' left by a killed worker, or 'failed': try again after a pause.
    last = datetime.strptime(row["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return retry_after is None or now - last >= retry_after


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
        if not _job_due(conn, job, period, now, retry_after=timedelta(minutes=5)):
            continue
        with transaction(conn):
            sql.start_job(conn, job, period, _iso(now))
        try:
            report = run_digests(conn, settings, freq, now=now, wait_for_retries=False, lock_timeout=5)
        except DigestBusy as exc:
            did.append(f"{job} {period}: {exc}; will retry")
            continue
        except SmtpConfigError as exc:
            with transaction(conn):
                sql.finish_job(conn, job, period, "failed", _iso(now), str(exc))
            did.append(f"{job} {period}: {exc}")
            continue
        # Composition is complete; undelivered rows are retried by every later tick.
        with transaction(conn):
            sql.finish_job(conn, job, period, "done", _iso(now), report.summary())
        did.append(f"{job}: {report.summary()}")
        for f in report.failed:
            did.append(f"  failed: {f['recipient']}: {f['error']}")
    did += _sync(conn, settings, now)
    did += _topic_map(conn, now)
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
    if not _job_due(conn, "sync", period, now, retry_after=SYNC_RETRY_AFTER):
        return []
    try:
        from paperwire.sync import run_sync  # the harvest area's freshness job
    except ImportError as exc:
        with transaction(conn):
            sql.start_job(conn, "sync", period, _iso(now))
            sql.finish_job(conn, "sync", period, "skipped", _iso(now), f"paperwire.sync unavailable: {exc}")
        return [f"sync {period}: skipped (paperwire.sync.run_sync not available: {exc})"]
    with transaction(conn):
        sql.start_job(conn, "sync", period, _iso(now))
    try:
        result = run_sync(conn, settings)
    except Exception as exc:  # a failed harvest must not stop digests; retried later
        log.exception("sync failed")
        with transaction(conn):
            sql.finish_job(conn, "sync", period, "failed", _iso(now), f"{type(exc).__name__}: {exc}")
        return [f"sync {period}: failed ({type(exc).__name__}: {exc}); retry in 30 min"]
    if isinstance(result, dict) and result.get("ok") is False:
        # The harvest reports partial failures instead of raising: retry it later.
        errors = "; ".join(map(str, result.get("errors") or []))[:500]
        with transaction(conn):
            sql.finish_job(conn, "sync", period, "failed", _iso(now), errors)
        return [f"sync {period}: failed ({errors}); retry in 30 min"]
    with transaction(conn):
        sql.finish_job(conn, "sync", period, "done", _iso(now), str(result)[:500])
    return [f"sync {period}: done {str(result)[:200]}"]


def _topic_map(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Weekly map refit, new papers placed in between (paperwire.topics.schedule)."""
    try:
        from paperwire.topics import schedule
    except ImportError as exc:  # pragma: no cover - the topics package ships with paperwire
        return [f"map: unavailable ({exc})"]
    try:
        return schedule.tick(conn, now)
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
    log.info("worker started: digests at %02d:00 (weekly on weekday %d), sync at %02d:00",
             settings.digest_hour, settings.digest_weekday, settings.sync_hour)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                for line in tick(conn, settings, now_fn() if now_fn else None):
                    log.info("%s", line)
            except Exception:  # keep the scheduler alive; the next tick retries
                log.exception("worker tick failed")
            if once:
                break
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        conn.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("worker stopped")
