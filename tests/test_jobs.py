"""Job leases (paperwire.jobs, store/jobs.py) on both engines: one owner at a time, a dead
owner's job taken over once its lease runs out, failed jobs retried after a pause."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from paperwire import jobs
from paperwire.store import jobs as rows
from paperwire.store.db import connect

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


def test_one_claim_per_period_and_done_stays_done(engine_conn, store_target):
    a = jobs.claim(engine_conn, store_target, "digest-daily", "daily:2026-11-23", "worker-a", now=NOW)
    assert a is not None
    assert jobs.claim(engine_conn, store_target, "digest-daily", "daily:2026-11-23", "worker-b", now=NOW) is None
    # Another period is another job.
    assert jobs.claim(engine_conn, store_target, "digest-daily", "daily:2026-11-24", "worker-b", now=NOW) is not None
    assert a.finish(engine_conn, "done", "3 sent", now=NOW)
    row = rows.get(engine_conn, "digest-daily", "daily:2026-11-23")
    assert (row["state"], row["owner"], row["lease_until"], row["detail"]) == ("done", "worker-a", None, "3 sent")
    assert jobs.claim(engine_conn, store_target, "digest-daily", "daily:2026-11-23", "worker-b", now=NOW) is None
    # A recurring job (indexing) is claimable again once done, but not while it runs.
    idx = jobs.claim(engine_conn, store_target, "index", "-", "worker-a", recurring=True, now=NOW)
    assert jobs.claim(engine_conn, store_target, "index", "-", "worker-b", recurring=True, now=NOW) is None
    idx.finish(engine_conn, "done", now=NOW)
    assert jobs.claim(engine_conn, store_target, "index", "-", "worker-b", recurring=True, now=NOW) is not None


def test_a_dead_workers_lease_runs_out_and_another_takes_over(engine_conn, store_target):
    dead = jobs.claim(engine_conn, store_target, "sync", "2026-11-23", "worker-a", lease_s=1, now=NOW)
    assert dead is not None  # ... and worker-a never renews: it was killed
    assert jobs.claim(engine_conn, store_target, "sync", "2026-11-23", "worker-b", lease_s=1, now=NOW) is None
    time.sleep(2.1)  # lease times have one-second resolution
    b = jobs.claim(engine_conn, store_target, "sync", "2026-11-23", "worker-b", lease_s=30, now=NOW)
    assert b is not None
    row = rows.get(engine_conn, "sync", "2026-11-23")
    assert row["owner"] == "worker-b" and row["attempts"] == 2
    # The old owner, should it wake up, can neither renew nor overwrite the outcome.
    assert not rows.renew(engine_conn, "sync", "2026-11-23", "worker-a", "2099-01-01T00:00:00Z")
    assert not dead.finish(engine_conn, "failed", "late", now=NOW)
    assert b.finish(engine_conn, "done", now=NOW)
    assert rows.get(engine_conn, "sync", "2026-11-23")["state"] == "done"


def test_the_heartbeat_keeps_a_long_job_ours(engine_conn, store_target):
    lease = jobs.claim(engine_conn, store_target, "map-build", "2026-W48", "worker-a", lease_s=1.5, now=NOW)
    with lease:
        time.sleep(3.5)  # more than twice the lease: only renewals keep it
        assert jobs.claim(engine_conn, store_target, "map-build", "2026-W48", "worker-b", lease_s=1.5, now=NOW) is None
        assert not lease.lost.is_set()
    assert lease.finish(engine_conn, "done", now=NOW)


def test_failed_jobs_wait_before_a_retry(engine_conn, store_target):
    a = jobs.claim(engine_conn, store_target, "sync", "2026-11-23", "worker-a", now=NOW)
    a.finish(engine_conn, "failed", "HTTP 503", now=NOW)
    pause = timedelta(minutes=30)
    assert jobs.claim(engine_conn, store_target, "sync", "2026-11-23", "worker-b", retry_after=pause,
                      now=NOW + timedelta(minutes=10)) is None
    assert jobs.claim(engine_conn, store_target, "sync", "2026-11-23", "worker-b", retry_after=pause,
                      now=NOW + timedelta(minutes=31)) is not None


def test_racing_claimers_get_exactly_one_winner(store_target):
    """Eight threads, each with its own connection, claim the same period at once."""
    connect(store_target).close()  # migrated
    barrier = threading.Barrier(8)
    winners: list[str] = []
    errors: list[BaseException] = []

    def race(i: int) -> None:
        conn = connect(store_target, migrate_schema=False)
        try:
            barrier.wait(10)
            if jobs.claim(conn, store_target, "digest-weekly", "weekly:2026-W48", f"w{i}", now=NOW):
                winners.append(f"w{i}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(winners) == 1


@pytest.mark.parametrize("state", ["done", "skipped"])
def test_rows_from_before_leases_keep_their_meaning(engine_conn, store_target, state):
    """Rows written by the old scheduler (no owner, no lease) are still honoured."""
    from paperwire.store import digest as old

    old.start_job(engine_conn, "digest-daily", "daily:2026-11-20", "2026-11-20T07:00:00Z")
    old.finish_job(engine_conn, "digest-daily", "daily:2026-11-20", state, "2026-11-20T07:01:00Z")
    assert jobs.claim(engine_conn, store_target, "digest-daily", "daily:2026-11-20", "worker-a", now=NOW) is None
