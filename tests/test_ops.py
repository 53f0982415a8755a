"""Operations on SQLite: ``/healthz``, ``/readyz``, ``/metrics`` and 503 (never 500) while the
store is down or locked; in-process and on real servers (one uvicorn in a thread; ``paperwire
serve --workers 2`` in a subprocess, whose metrics are summed over both workers). PostgreSQL,
restarted under a running node: tests/test_ops_pg.py.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import httpx
import pytest

from ops_support import requests_of, samples, serve, server_env, stop_server
from paperwire.store.db import connect
from web_support import SECRET, csrf_from, demo_db, free_port, live_server, make_client

TOKEN = "metrics-token-for-tests"


# ---------------------------------------------------------------- SQLite, in process and one server

def test_healthz_readyz_and_metrics_count_requests(tmp_path):
    db = demo_db(tmp_path)
    with live_server(db) as base, httpx.Client(base_url=base, timeout=30) as c:
        # The counters are per process, and other tests of this process count too: deltas only.
        before = samples(c.get("/metrics").text)  # from 127.0.0.1: the default allows loopback
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json()["ok"] is True
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["ready"] is True and body["store"] == "ok" and body["rev"] >= 1
        assert body["indexes"]["lexical"]["lag"] == 0  # the demo template was indexed

        assert c.get("/").status_code == 200
        assert c.get("/").status_code == 200  # the second is a cache hit, answered before routing
        assert c.get("/papers/2401.99999").status_code == 200
        assert c.get("/papers/2401.99999?format=json").status_code == 200
        assert c.get("/no/such/page").status_code == 404
        assert c.post("/api/v1/library/save").status_code == 403  # refused by the guard, still counted
        page = c.get("/metrics")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
        after = samples(page.text)

    def delta(route, status, method="GET"):
        return requests_of(after, route, status, method) - requests_of(before, route, status, method)

    assert delta("/", "200") == 2
    assert delta("/papers/{paper_id:path}", "200") == 2  # the template, never the raw path
    assert not any("2401.99999" in str(k) for k in after)
    assert delta("unmatched", "404") == 1
    assert delta("/api/v1/library/save", "403", "POST") == 1  # the include prefix is kept
    assert delta("/healthz", "200") == 1 and delta("/readyz", "200") == 1
    count = ("paperwire_http_request_duration_seconds_count", (("route", "/"),))
    assert after[count] - before.get(count, 0) == 2
    assert after[("paperwire_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/")))] == after[count]
    assert after[("paperwire_store_up", ())] == 1
    assert after[("paperwire_index_lag_revisions", (("index", "lexical"),))] == 0
    assert after[("paperwire_store_rev", ())] == body["rev"]


def test_metrics_read_worker_jobs_and_index_lag(tmp_path):
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord
    from paperwire.store import digest as digest_store
    from paperwire.store import jobs

    db = demo_db(tmp_path)
    conn = connect(db)
    digest_store.start_job(conn, "digest-daily", "2026-12-01", "2026-12-01T06:00:00Z")
    digest_store.finish_job(conn, "digest-daily", "2026-12-01", "done", "2026-12-01T06:01:00Z")
    digest_store.start_job(conn, "digest-daily", "2026-12-02", "2026-12-02T06:00:00Z")
    digest_store.finish_job(conn, "digest-daily", "2026-12-02", "failed", "2026-12-02T06:01:00Z", "smtp down")
    # Two leased jobs: one whose worker renews it, one whose worker died an hour ago.
    for job, until in (("sync", "2999-01-01T00:00:00Z"), ("index", "2000-01-01T00:00:00Z")):
        assert jobs.claim(conn, job, "-", "worker-a", started_at="2026-12-02T06:00:00Z", now="2026-12-02T06:00:00Z",
                          lease_until=until, retry_before="2026-12-02T05:00:00Z")
    # A paper written after the last index run: the store's lexical index is one revision behind.
    import_records(conn, [PaperRecord(title="A paper the indexer has not seen", abstract="Fresh.", source="test",
                                      arxiv_id="2612.00001", published="2026-12-02T00:00:00Z")])
    conn.close()
    with live_server(db) as base, httpx.Client(base_url=base, timeout=30) as c:
        s = samples(c.get("/metrics").text)
        ready = c.get("/readyz")
    assert s[("paperwire_jobs", (("job", "digest-daily"), ("state", "done")))] == 1
    assert s[("paperwire_jobs", (("job", "digest-daily"), ("state", "failed")))] == 1
    assert s[("paperwire_jobs", (("job", "sync"), ("state", "running")))] == 1
    assert s[("paperwire_jobs_leased", (("job", "sync"),))] == 1
    assert s[("paperwire_jobs_lease_expired", (("job", "index"),))] == 1
    assert s[("paperwire_jobs_lease_expired", (("job", "sync"),))] == 0
    assert s[("paperwire_index_lag_revisions", (("index", "lexical"),))] == 1
    # The store's own index is a job backlog, not this node's replica: the node is ready.
    assert ready.status_code == 200 and ready.json()["indexes"]["lexical"]["lag"] == 1


def test_metrics_are_not_public(tmp_path, monkeypatch):
    db = demo_db(tmp_path)
    client = make_client(db)  # the test client's peer is "testclient", not a loopback address
    refused = client.get("/metrics")
    assert refused.status_code == 403 and "PAPERWIRE_METRICS_TOKEN" in refused.json()["error"]
    assert "paperwire_http" not in refused.text
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403  # no token set

    monkeypatch.setenv("PAPERWIRE_METRICS_TOKEN", TOKEN)
    client = make_client(db)
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "paperwire_http_requests_total" in ok.text
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403

    monkeypatch.delenv("PAPERWIRE_METRICS_TOKEN")
    with live_server(db) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/metrics").status_code == 200
        # Through a proxy on this box every visitor's peer is 127.0.0.1: never trusted by address.
        assert c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
        assert c.get("/metrics", headers={"X-Real-IP": "203.0.113.9"}).status_code == 403
    monkeypatch.setenv("PAPERWIRE_METRICS_ALLOW", "none")
    with live_server(db) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/metrics").status_code == 403
    monkeypatch.setenv("PAPERWIRE_METRICS_ALLOW", "10.0.0.0/8, not-a-network")
    with pytest.raises(ValueError, match="PAPERWIRE_METRICS_ALLOW: 'not-a-network'"):
        make_client(db)
    from click.testing import CliRunner

    from paperwire.cli import cli

    r = CliRunner().invoke(cli, ["--db", str(db), "serve", "--port", str(free_port())])
    assert r.exit_code == 1 and "PAPERWIRE_METRICS_ALLOW: 'not-a-network'" in r.output
    assert "Traceback" not in r.output


def test_ops_paths_take_get_and_head_only(tmp_path):
    client = make_client(demo_db(tmp_path))
    assert client.head("/healthz").status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        r = client.post(path)
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_store_down_gives_503_with_retry_after(tmp_path):
    """Whatever layer meets the dead store (the cache fast path, the guard, a route), the
    answer is 503 + Retry-After, a page or JSON; /healthz does not touch the store."""
    from paperwire.store.dialect import StoreUnavailable
    from paperwire.web import security

    db = demo_db(tmp_path)
    client = make_client(db)
    assert client.get("/").status_code == 200
    st = client.app.state.pw

    def down():
        raise StoreUnavailable("cannot open the PostgreSQL store: host db.internal, port 5432, database pw: refused")

    st.conn = down
    home = client.get("/")
    assert home.status_code == 503 and home.headers["retry-after"] == "5"
    assert "text/html" in home.headers["content-type"] and "Temporarily unavailable" in home.text
    assert "Traceback" not in home.text and "db.internal" not in home.text  # no internals shown
    assert home.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in home.headers
    api = client.get("/api/daily_papers")
    assert api.status_code == 503 and api.headers["retry-after"] == "5" and "error" in api.json()
    assert client.get("/papers/2401.99999", headers={"Accept": "application/json"}).json()["error"]
    session = {"Cookie": f"{security.SESSION_COOKIE}={'x' * 40}; {security.CSRF_COOKIE}=c"}
    signed = client.get("/library", headers=session)  # past the cache fast path: the route's user lookup
    assert signed.status_code == 503 and signed.headers["retry-after"] == "5"
    # An API write: the guard looks the session up before the body is read (it used to say 400 here).
    write = client.post("/api/v1/library/save", headers={**session, "X-CSRF-Token": security.csrf_for(SECRET, "c")})
    assert write.status_code == 503 and write.headers["retry-after"] == "5" and "error" in write.json()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    assert ready.json() == {"ready": False, "store": "unreachable"}
    assert client.get("/healthz").status_code == 200  # the process is alive: no store needed


def test_sqlite_locked_beyond_busy_timeout_is_503(tmp_path):
    """A real lock: another connection holds the write lock longer than the site's connection waits."""
    db = demo_db(tmp_path)
    client = make_client(db)
    st = client.app.state.pw
    real_conn = st.conn

    def impatient():
        c = real_conn()
        c.execute("PRAGMA busy_timeout=200")  # the site waits 30 s; the test has not got that long
        return c

    st.conn = impatient
    page = client.get("/signup")
    blocker = sqlite3.connect(str(db), isolation_level=None, timeout=5)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        r = client.post("/signup", data={"username": "locked", "email": "locked@example.org",
                                         "password": "correct horse battery", "csrf_token": csrf_from(page.text),
                                         "next": "/"}, follow_redirects=False)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text[:300]
    assert "Traceback" not in r.text
    again = client.post("/signup", data={"username": "locked", "email": "locked@example.org",
                                         "password": "correct horse battery", "csrf_token": csrf_from(page.text),
                                         "next": "/"}, follow_redirects=False)
    assert again.status_code == 303  # the lock is gone: the same form goes through


def _per_process_counts(folder: Path, route: str) -> dict:
    """{pid: requests to ``route``} from a multiprocess folder, one worker's files at a time."""
    import shutil

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    out = {}
    for pid in {f.stem.rsplit("_", 1)[1] for f in folder.glob("counter_*.db")}:
        one = Path(tempfile.mkdtemp(prefix="pw-one-worker-"))
        try:
            for f in folder.glob(f"*_{pid}.db"):
                shutil.copy(f, one / f.name)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(one))
            out[pid] = requests_of(samples(generate_latest(registry).decode()), route, "200")
        finally:
            shutil.rmtree(one)
    return out


def test_metrics_are_summed_over_worker_processes(tmp_path):
    """``serve --workers 2``: the workers share a port, so a scrape reaches either one; every
    scrape must still count every request (prometheus-client multiprocess mode)."""
    db = demo_db(tmp_path)
    metric_dirs = set(Path(tempfile.gettempdir()).glob("paperwire-metrics-*"))
    proc, base = serve(db, server_env(), tmp_path / "serve.log", "--workers", "2")
    try:
        n = 40
        for _ in range(n):  # a fresh connection each: the kernel spreads them over both workers
            assert httpx.get(base + "/api/daily_papers", timeout=30).status_code == 200
        scrapes = [samples(httpx.get(base + "/metrics", timeout=30).text) for _ in range(8)]
        created = set(Path(tempfile.gettempdir()).glob("paperwire-metrics-*")) - metric_dirs
        per_worker = _per_process_counts(next(iter(created)), "/api/daily_papers")
    finally:
        stop_server(proc)
    assert len(per_worker) == 2 and all(per_worker.values()), per_worker  # both workers served some
    assert sum(per_worker.values()) == n
    assert len(created) == 1  # the server made one private folder for its workers ...
    assert not any(p.exists() for p in created)  # ... and removed it when it stopped
    for s in scrapes:  # whichever worker answered, it reports both workers' requests
        assert requests_of(s, "/api/daily_papers", "200") == n
        assert ("process_resident_memory_bytes", ()) not in s  # per-process facts are left out when summed
    assert sorted(requests_of(s, "/metrics", "200") for s in scrapes) == list(range(8))
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_pool_retries_a_lost_server_every_few_seconds():
    """psycopg_pool doubles the wait between reconnect attempts (1, 2, 4, 8 s ...): after a
    minute's outage a node would stay away for up to another minute. Ours waits at most
    2 * RETRY_MAX_S between attempts (nothing listens on the port: each attempt fails at once)."""
    import logging
    import time

    pytest.importorskip("psycopg_pool")
    from paperwire.store.pgpool import RETRY_MAX_S, pool_class

    attempts: list[float] = []

    class Attempts(logging.Handler):
        def emit(self, record):
            if "error connecting" in record.getMessage():
                attempts.append(record.created)

    logger = logging.getLogger("psycopg.pool")
    handler, level = Attempts(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # the web app silences these; here they are the measurement
    pool = pool_class()(f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=1, open=False,
                        name="retry-test", kwargs={"connect_timeout": 2})
    try:
        pool.open(wait=False)
        time.sleep(8.5)
    finally:
        pool.close(timeout=0)
        logger.removeHandler(handler)
        logger.setLevel(level)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) >= 5, gaps  # uncapped: attempts at 0, 1, 3, 7 s only
    assert max(gaps) <= 2 * RETRY_MAX_S + 0.5, gaps
