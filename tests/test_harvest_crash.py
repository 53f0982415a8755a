"""SIGKILL a real ``python -m paperwire harvest`` mid-run, rerun it: same papers as an
uninterrupted run, no duplicates, and the rerun continues at the stored token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from harvest_support import FakeRepository, LocalServer, simple_records
from paperwire.harvest import harvest
from paperwire.settings import Settings
from paperwire.store import harvest as hsql
from paperwire.store.db import connect


def _snapshot(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT paper_id, version, title, hidden FROM papers ORDER BY paper_id")]


def _records():
    recs = simple_records(14, datestamp="2026-11-19")
    recs[4] = dict(recs[4], deleted=True)  # a deletion on page 2
    # a paper that shows up twice: v1 early in the list, v2 on the last page
    recs += [dict(simple_records(1, start=3, version=2, title="Paper 3 revised")[0], datestamp="2026-11-20")]
    return recs


def test_sigkill_mid_harvest_then_rerun(tmp_path):
    # Reference: an uninterrupted run.
    ref_db = tmp_path / "ref.db"
    with LocalServer(FakeRepository(_records(), page_size=3).handle) as srv:
        ref = connect(ref_db)
        harvest(ref, Settings(db_path=ref_db, harvest_delay=0), base_url=srv.url + "/oai", set_spec="cs")
        expected = _snapshot(ref)
        ref.close()
    assert len(expected) == 13 and ("2611.00003", 2, "Paper 3 revised", 0) in expected

    db = tmp_path / "crash.db"
    repo = FakeRepository(_records(), page_size=3, block_page=3)
    with LocalServer(repo.handle) as srv:
        env = dict(os.environ, PAPERWIRE_HARVEST_DELAY="0", PAPERWIRE_DB=str(db))
        cmd = [sys.executable, "-m", "paperwire", "--db", str(db), "harvest", "--set", "cs",
               "--base-url", srv.url + "/oai"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert repo.reached.wait(60), "harvester never asked for page 3"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL

        conn = connect(db)
        job = hsql.job_key(srv.url + "/oai", "arXivRaw", "cs")
        state = hsql.get_state(conn, job)
        # pages 1-2 committed together with the cursor that points at page 3
        assert state["run_status"] == "running" and state["run_pages"] == 2
        assert conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 5  # 6 records, one deleted
        token = state["run_token"]
        conn.close()

        repo.release.set()
        n = len(srv.requests)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "(resumed)" in done.stdout
        assert srv.requests[n].params == {"verb": "ListRecords", "resumptionToken": token}

    conn = connect(db)
    got = _snapshot(conn)
    assert got == expected
    assert tuple(conn.execute("SELECT COUNT(*), COUNT(DISTINCT arxiv_id) FROM papers").fetchone()) == (13, 13)
    assert hsql.get_state(conn, job)["run_status"] == "idle"
    conn.close()


def test_sigkill_at_random_moments_converges(tmp_path):
    """Kill the harvester at arbitrary points (mid-request, mid-commit) a few times, then
    let it finish: the store matches an uninterrupted run exactly."""
    import random
    import time

    recs = simple_records(60, datestamp="2026-11-19")
    ref_db = tmp_path / "ref.db"
    with LocalServer(FakeRepository(recs, page_size=3).handle) as srv:
        ref = connect(ref_db)
        harvest(ref, Settings(db_path=ref_db, harvest_delay=0), base_url=srv.url + "/oai", set_spec="cs")
        expected = _snapshot(ref)
        ref.close()

    db = tmp_path / "kill.db"
    rng = random.Random(7)
    with LocalServer(FakeRepository(recs, page_size=3).handle) as srv:
        env = dict(os.environ, PAPERWIRE_HARVEST_DELAY="0.02")
        cmd = [sys.executable, "-m", "paperwire", "--db", str(db), "harvest", "--set", "cs",
               "--base-url", srv.url + "/oai"]
        kills = 0
        for _ in range(4):
            n = len(srv.requests)
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while len(srv.requests) < n + 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.15))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(10)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert kills >= 2
    conn = connect(db)
    assert _snapshot(conn) == expected
    assert tuple(conn.execute("SELECT COUNT(*), COUNT(DISTINCT arxiv_id) FROM papers").fetchone()) == (60, 60)
    conn.close()
