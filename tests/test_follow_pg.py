"""The change follower (paperwire.index.follow): a commit through any connection that moves
the store revision wakes every node's follower by NOTIFY, which catches the replicas up;
with notifications lost, polling still does."""

from __future__ import annotations

import time

from paperwire.index import follow
from paperwire.index.build import update_index
from paperwire.index.fastlex import open_index
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store.db import connect
from paperwire.store.search import store_rev


def _paper(i: int) -> PaperRecord:
    return PaperRecord(title=f"Follower paper {i} on sparse attention", abstract="We study it. " * 5,
                       source="test", arxiv_id=f"2612.{i:05d}", authors=["Ada Lovelace"], categories=["cs.LG"],
                       published="2026-12-01T10:00:00Z")


def _wait(check, timeout: float) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - t0


def test_a_commit_elsewhere_wakes_the_follower_which_catches_the_replica_up(pg_url):
    conn = connect(pg_url)
    import_records(conn, [_paper(1)])
    update_index(conn, semantic=False)
    # A long poll: only a notification can wake it within the test's deadline.
    f = follow.RevFollower(pg_url, poll_s=60)
    f.start()
    try:
        _wait(lambda: f.wakeups >= 1, 10)  # the first catch-up, right after LISTEN
        writer = connect(pg_url, migrate_schema=False)
        import_records(writer, [_paper(2)])  # bumps rev: the trigger notifies at commit
        writer.close()
        rev = store_rev(conn)
        took = _wait(lambda: f.notified >= 1 and open_index(conn).stored_rev() >= rev, 10)
        assert took < 5
        idx = open_index(conn)
        idx.reload_if(idx.stored_rev())
        assert idx.stored_rev() == rev
    finally:
        f.stop()
        f.join(5)
        conn.close()


def test_polling_catches_up_without_notifications(pg_url):
    conn = connect(pg_url)
    import_records(conn, [_paper(3)])
    update_index(conn, semantic=False)
    # Drop the trigger: notifications are gone, as while a listening connection is down.
    conn.execute("DROP TRIGGER paperwire_rev_notify ON meta")
    f = follow.RevFollower(pg_url, poll_s=0.3)
    f.start()
    try:
        _wait(lambda: f.wakeups >= 1, 10)
        import_records(conn, [_paper(4)])
        rev = store_rev(conn)
        _wait(lambda: open_index(conn).stored_rev() >= rev, 10)
        assert f.notified == 0 and f.wakeups >= 2
    finally:
        f.stop()
        f.join(5)
        conn.close()


def test_nothing_to_follow_on_sqlite(tmp_path):
    assert follow.start(tmp_path / "p.db") is None
