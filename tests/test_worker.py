"""The built-in scheduler: digests at the configured hour/weekday, the sync job, the outbox."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import types
from datetime import datetime, timedelta, timezone

import pytest

from digest_support import SECRET, SmtpServer, activate, add_papers, make_settings
from paperwire import worker
from paperwire.digest.subscriptions import Preferences, subscribe
from paperwire.store import digest as sql

MONDAY_6 = datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def no_sync(monkeypatch):
    monkeypatch.setitem(sys.modules, "paperwire.sync", None)  # import fails: the job is skipped


def test_digests_at_the_configured_hour_once_per_period(conn, db_path, smtp, no_sync):
    settings = make_settings(db_path, smtp.port, digest_hour=7, digest_weekday=0, sync_hour=5)
    add_papers(conn, 6, now=MONDAY_6)
    activate(conn, settings, "d@example.org", frequency="daily", top_n=2)
    activate(conn, settings, "w@example.org", frequency="weekly", top_n=2)

    assert not [l for l in worker.tick(conn, settings, MONDAY_6) if l.startswith("digest")]
    assert smtp.messages == []
    lines = worker.tick(conn, settings, MONDAY_6.replace(hour=7, minute=1))
    assert any(l.startswith("digest-daily: daily:2026-11-23") for l in lines)
    assert any(l.startswith("digest-weekly: weekly:2026-W48") for l in lines)
    assert len(smtp.handler.to("d@example.org")) == 1 and len(smtp.handler.to("w@example.org")) == 1
    # Later ticks the same day: the jobs are done.
    assert not [l for l in worker.tick(conn, settings, MONDAY_6.replace(hour=9)) if l.startswith("digest")]
    # Tuesday: a new daily period; the weekly one waits for next Monday.
    add_papers(conn, 4, start=100, now=MONDAY_6 + timedelta(days=1))
    lines = worker.tick(conn, settings, MONDAY_6.replace(hour=8) + timedelta(days=1))
    assert [l.split(":")[0] for l in lines if l.startswith("digest")] == ["digest-daily"]
    assert len(smtp.handler.to("d@example.org")) == 2 and len(smtp.handler.to("w@example.org")) == 1
    assert sql.get_job(conn, "digest-weekly", "weekly:2026-W48")["state"] == "done"
    assert sql.get_job(conn, "sync", "2026-11-23")["state"] == "skipped"


def test_sync_job_runs_daily_after_sync_hour(conn, db_path, smtp, monkeypatch):
    calls = []
    fake = types.ModuleType("paperwire.sync")

    def run_sync(c, s):
        calls.append(s.db_path)
        if len(calls) == 1:
            return {"ok": False, "errors": ["arXiv said 503"]}
        return {"ok": True, "changed": 3}

    fake.run_sync = run_sync
    monkeypatch.setitem(sys.modules, "paperwire.sync", fake)
    settings = make_settings(db_path, smtp.port, sync_hour=6, digest_hour=23)
    assert not worker.tick(conn, settings, MONDAY_6.replace(hour=5))
    lines = worker.tick(conn, settings, MONDAY_6)
    assert calls and "failed (arXiv said 503)" in lines[0]
    assert not worker.tick(conn, settings, MONDAY_6 + timedelta(minutes=10))  # retry waits 30 min
    lines = worker.tick(conn, settings, MONDAY_6 + timedelta(minutes=31))
    assert len(calls) == 2 and "done" in lines[0]
    assert not worker.tick(conn, settings, MONDAY_6 + timedelta(hours=3))
    assert sql.get_job(conn, "sync", "2026-11-23")["state"] == "done"


def test_worker_flushes_queued_confirmations(conn, db_path, smtp, no_sync):
    settings = make_settings(db_path, smtp.port, digest_hour=23, sync_hour=23)
    subscribe(conn, settings, "new@example.org", Preferences())  # queued by the web form, not sent yet
    lines = worker.tick(conn, settings, MONDAY_6)
    assert "outbox confirm: 1 sent" in " ".join(lines)
    assert smtp.messages[0].msg["Subject"] == "Confirm your paperwire digest"


def test_worker_command_runs_and_stops_on_sigterm(db_path, smtp):
    import os

    env = dict(os.environ, PAPERWIRE_SECRET_KEY=SECRET, PAPERWIRE_SMTP_PORT=str(smtp.port),
               PAPERWIRE_DIGEST_TIMEZONE="UTC", PAPERWIRE_DIGEST_HOUR="7", PAPERWIRE_SYNC_HOUR="23")
    from paperwire.store.db import connect

    conn = connect(db_path)
    add_papers(conn, 3, now=MONDAY_6)
    activate(conn, make_settings(db_path, smtp.port), "cmd@example.org", top_n=2)
    conn.close()
    once = subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db_path), "worker", "--once",
                           "--now", "2026-11-23T08:00:00Z"], env=env, capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    assert "digest-daily: daily:2026-11-23" in once.stderr and len(smtp.messages) == 1
    proc = subprocess.Popen([sys.executable, "-m", "paperwire", "--db", str(db_path), "worker", "--interval", "0.2",
                             "--now", "2026-11-23T08:00:00Z"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Signal only once the handlers are in place ("worker started" is logged after that),
    # so a slow start under load cannot turn SIGTERM into a plain kill.
    first_lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        first_lines.append(line)
        if "worker started" in line:
            break
    assert any("worker started" in l for l in first_lines), first_lines
    time.sleep(0.5)  # a couple of ticks in the same period
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    err = "".join(first_lines) + rest
    assert proc.returncode == 0 and "worker stopped" in err
    assert len(smtp.messages) == 1  # same period: nothing sent twice


def test_a_worker_whose_lease_is_taken_over_stops_before_the_next_mail(conn, store_arg, smtp, no_sync, monkeypatch):
    """Presumed dead (its lease taken over while it was stuck), a worker stops at the next
    safe point instead of racing the new owner; the rest of the period is sent once, by
    the next owner."""
    from paperwire.digest import send
    from paperwire.store import jobs as job_rows

    settings = make_settings(store_arg, smtp.port, digest_hour=7, sync_hour=23, job_lease_s=0.9)
    add_papers(conn, 6, now=MONDAY_6)
    people = [f"r{i}@example.org" for i in range(4)]
    for who in people:
        activate(conn, settings, who, frequency="daily", top_n=2)
    real = send._deliver_one
    sent_before_takeover = []

    def deliver_then_get_taken_over(conn_, settings_, session, row, *args):
        real(conn_, settings_, session, row, *args)
        if not sent_before_takeover:
            sent_before_takeover.append(row["recipient"])
            # The worker stalls (a long GC, a frozen VM) and another worker takes the job
            # over; its heartbeat, every lease/3 s, finds the row no longer ours.
            conn_.execute("UPDATE worker_jobs SET owner = 'worker-b' WHERE job = 'digest-daily'")
            time.sleep(1.0)

    monkeypatch.setattr(send, "_deliver_one", deliver_then_get_taken_over)
    at = MONDAY_6.replace(hour=7, minute=1)
    lines = worker.tick(conn, settings, at)
    stopped = [l for l in lines if l.startswith("digest-daily daily:2026-11-23: lease taken over by another worker")]
    assert len(stopped) == 1 and ", 1 sent," in stopped[0], lines  # the job stopped before its second mail
    row = job_rows.get(conn, "digest-daily", "daily:2026-11-23")
    assert row["owner"] == "worker-b" and row["state"] == "running"  # the outcome is not ours to write
    # The rows it left are due ledger rows: the catch-all delivery pass of a tick (this one's,
    # or any worker's) sends each once, whoever owns the job.
    assert sorted(m.msg["To"] for m in smtp.messages) == sorted(people)
    # worker-b dies too; once its lease has run out, the next tick finishes the period.
    monkeypatch.setattr(send, "_deliver_one", real)
    conn.execute("UPDATE worker_jobs SET lease_until = '2000-01-01T00:00:00Z' WHERE job = 'digest-daily'")
    worker.tick(conn, settings, at)
    assert sorted(m.msg["To"] for m in smtp.messages) == sorted(people)  # still each exactly once
    assert job_rows.get(conn, "digest-daily", "daily:2026-11-23")["state"] == "done"
