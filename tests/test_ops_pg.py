"""Operations on PostgreSQL: a store connection that loses its server inside and outside a
transaction; a real ``paperwire serve`` hammered while PostgreSQL stops and starts again
(200 or 503 + Retry-After, never 500, one log line, back by itself); a node with more
concurrent requests than pool connections; readiness waiting for the node's tantivy replica.

The cluster is this module's own (tests/pg_support.py's PgCluster): it is stopped and
restarted here, which the session cluster shared by other tests must never be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from ops_support import requests_of, samples, serve, server_env, stop_server
from paperwire.store.db import connect, transaction

@pytest.fixture(scope="module")
def private_pg():
    """A cluster of this module's own: it is stopped and started again here, which the
    session cluster (shared by the other tests of this process) must never be."""
    import pg_support

    bindir = pg_support.pg_bin_dir()
    if bindir is None or not (bindir / "initdb").exists():
        pg_support._missing("PostgreSQL binaries not found (apt-get install postgresql, or set PAPERWIRE_PG_BIN)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pg_support._missing("psycopg is not installed (pip install 'paperwire[postgres]')")
    cluster = pg_support.PgCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        from paperwire.store.dialect import close_pools

        close_pools()
        cluster.stop()


def _pg_ctl(cluster, *args: str) -> None:
    r = cluster._run(str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.root / "log"),
                     "-w", "-t", "60", *args, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def pg_store(private_pg, tmp_path, monkeypatch):
    from paperwire.index import fastlex
    from paperwire.store.dialect import close_pools

    monkeypatch.setenv("PAPERWIRE_INDEX_DIR", str(tmp_path / "pg-index"))
    url = private_pg.create_database()
    yield private_pg, url
    if not (private_pg.data / "postmaster.pid").exists():  # a test failed while it was down
        _pg_ctl(private_pg, "start")
    fastlex.close_all()
    close_pools()


def test_pg_connection_survives_a_server_restart(pg_store):
    import psycopg

    cluster, url = pg_store
    conn = connect(url)
    conn.execute("CREATE TABLE t (x INTEGER)")
    _pg_ctl(cluster, "-m", "fast", "restart")
    # A read outside a transaction meets the dead connection and is run again on a fresh one.
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0

    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1)")
    _pg_ctl(cluster, "-m", "fast", "restart")
    with pytest.raises(psycopg.OperationalError):
        conn.execute("INSERT INTO t VALUES (2)")  # the transaction went with the server
    assert conn.in_transaction
    with pytest.raises(psycopg.OperationalError):
        conn.commit()  # never "committed" for writes the server did not keep
    conn.rollback()
    assert not conn.in_transaction
    with pytest.raises(psycopg.OperationalError):
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (3)")
            _pg_ctl(cluster, "-m", "fast", "restart")
            conn.execute("INSERT INTO t VALUES (4)")
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0  # nothing half-written
    with transaction(conn):  # and the connection is usable again
        conn.execute("INSERT INTO t VALUES (5)")
    assert [r[0] for r in conn.execute("SELECT x FROM t").fetchall()] == [5]
    conn.close()


def test_postgres_restart_mid_run_gives_503_then_recovers(pg_store, tmp_path):
    """Two web nodes and a worker on one cluster; PostgreSQL stops under load and starts
    again: both nodes answer 503 with Retry-After meanwhile (one log line per outage, no
    tracebacks), and both come back by themselves."""
    from paperwire.demo import load_demo
    from paperwire.index.build import update_index

    cluster, url = pg_store
    conn = connect(url)
    load_demo(conn, progress=False)
    update_index(conn, semantic=False)
    paper_id = conn.execute("SELECT paper_id FROM papers ORDER BY id LIMIT 1").fetchone()[0]
    conn.close()
    env = server_env(PAPERWIRE_INDEX_DIR=os.environ["PAPERWIRE_INDEX_DIR"])
    logs = [tmp_path / "serve-a.log", tmp_path / "serve-b.log"]
    nodes = [serve(url, env, logs[0])]
    nodes.append(serve(url, env, logs[1]))
    bases = [base for _, base in nodes]
    # A worker rides the outage out too: one line per pass while down, then back to work.
    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "paperwire", "--db", url, "worker", "--interval", "0.5"],
        stdout=open(worker_log, "wb"), stderr=subprocess.STDOUT,
        env=dict(env, PAPERWIRE_SYNC_HOUR="23", PAPERWIRE_DIGEST_HOUR="23", PAPERWIRE_SECRET_KEY="k" * 32,
                 PAPERWIRE_EMBEDDER="none"))
    paths = ["/", "/api/daily_papers", f"/papers/{paper_id}", "/search?q=neural+networks",
             "/api/papers/search?q=learning", "/trending", "/readyz"]
    # (time, node, path, status, Retry-After, body)
    answers: list[tuple[float, int, str, int, str | None, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(offset: int) -> None:
        node = offset % 2
        with httpx.Client(base_url=bases[node], timeout=60) as c:
            i = offset
            while not stop.is_set():
                path = paths[i % len(paths)]
                i += 1
                try:
                    r = c.get(path)
                    got = (time.monotonic(), node, path, r.status_code, r.headers.get("retry-after"), r.text[:2000])
                except httpx.HTTPError as exc:  # a refused connection would be a failure too
                    got = (time.monotonic(), node, path, -1, None, repr(exc))
                with lock:
                    answers.append(got)

    threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(4)]
    scrapes, readies = [], []
    try:
        for t in threads:
            t.start()
        time.sleep(2)
        with lock:
            assert {a[1] for a in answers} == {0, 1}
            assert all(a[3] == 200 for a in answers), [a[:5] for a in answers if a[3] != 200][:5]
        _pg_ctl(cluster, "-m", "fast", "stop")
        down_at = time.monotonic()
        time.sleep(4)
        for base in bases:
            ready = httpx.get(base + "/readyz", timeout=30)
            assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
            assert ready.json()["ready"] is False and ready.json()["store"] == "unreachable"
            assert httpx.get(base + "/healthz", timeout=5).status_code == 200  # alive, and says so quickly
        _pg_ctl(cluster, "start")
        up_at = time.monotonic()
        while True:  # every path of both nodes answers 200 again, by itself
            with lock:
                recent = [a for a in answers if a[0] > time.monotonic() - 0.5]
            if ({a[1] for a in recent} == {0, 1} and len(recent) >= 2 * len(paths)
                    and all(a[3] == 200 for a in recent)):
                break
            assert time.monotonic() - up_at < 15, [a[:5] for a in recent]
            time.sleep(0.1)
        recovered_in = time.monotonic() - up_at
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(60)
        for base in bases:
            scrapes.append(samples(httpx.get(base + "/metrics", timeout=30).text))
            readies.append(httpx.get(base + "/readyz", timeout=30))
        time.sleep(1.5)  # a few worker passes after the store came back
    finally:
        stop.set()
        for proc, _ in nodes:
            stop_server(proc)
        worker.terminate()
        worker.wait(30)
    work = worker_log.read_text()
    assert worker.returncode == 0 and "worker stopped" in work, work[-3000:]
    assert "Traceback" not in work and "store unavailable, retrying next tick" in work, work[-3000:]
    assert "store reachable again" in work, work[-3000:]
    statuses = {a[3] for a in answers}
    print(f"{len(answers)} answers, {sum(a[3] == 503 for a in answers)} of them 503, back {recovered_in:.2f} s "
          f"after PostgreSQL started")
    assert statuses <= {200, 503}, [a[:5] for a in answers if a[3] not in (200, 503)][:5]
    assert not any("Traceback" in a[5] or "psycopg" in a[5] for a in answers)
    assert recovered_in < 10
    for node, (log, scrape, ready) in enumerate(zip(logs, scrapes, readies)):
        output = log.read_text()
        print(f"node {node} output:\n{output}")
        refused = [a for a in answers if a[3] == 503 and a[1] == node]
        assert refused, f"no request to node {node} saw the store down"
        assert all(a[4] == "5" for a in refused)
        assert all(a[0] > down_at - 1 for a in refused)  # only during the outage
        assert "Traceback" not in output and "Exception in ASGI" not in output, output[-3000:]
        assert output.count("store unavailable, answering 503") == 1, output[-3000:]  # once per outage
        assert output.count("store reachable again") == 1, output[-3000:]
        # The banner, the two outage lines, and a line or two of other parts (the change follower
        # says it polls meanwhile): no storm.
        assert len(output.splitlines()) <= 6, output
        assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
        assert scrape[("paperwire_store_unavailable_responses_total", ())] == len(
            [a for a in refused if a[2] != "/readyz"])
        assert requests_of(scrape, "/api/daily_papers", "503") > 0 and requests_of(scrape, "/api/daily_papers", "200") > 0
        assert scrape[("paperwire_index_lag_revisions", (("index", "tantivy"),))] == 0
    assert scrape[("paperwire_store_up", ())] == 1


def test_pg_node_serves_more_concurrent_requests_than_pool_connections(pg_store, tmp_path):
    """Each request thread keeps a store connection and the pool has POOL_MAX per process:
    16 concurrent clients once left 8 threads waiting 30 s for one, then answering 503."""
    from paperwire.demo import load_demo
    from paperwire.store.dialect import POOL_MAX

    cluster, url = pg_store
    conn = connect(url)
    load_demo(conn, progress=False)
    conn.close()
    log = tmp_path / "serve.log"
    proc, base = serve(url, server_env(PAPERWIRE_INDEX_DIR=os.environ["PAPERWIRE_INDEX_DIR"]), log, "--no-cache")
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            for i in range(8):
                t0 = time.monotonic()
                r = c.get(f"/api/daily_papers?client={k}&i={i}")
                with lock:
                    results.append((r.status_code, time.monotonic() - t0))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2 * POOL_MAX)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        stop_server(proc)
    assert len(results) == 16 * POOL_MAX  # 2 * POOL_MAX clients, 8 requests each
    assert {s for s, _ in results} == {200}
    assert max(t for _, t in results) < 20  # nobody waited out the pool's 30 s
    assert "store unavailable" not in log.read_text()


def test_readiness_waits_for_the_nodes_tantivy_replica(pg_store):
    """On PostgreSQL the lexical index is this node's tantivy replica: a node whose replica
    is behind the store revision is not ready until the catch-up it starts has finished."""
    from paperwire import readiness
    from paperwire.index import fastlex
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord

    cluster, url = pg_store
    conn = connect(url)
    import_records(conn, [PaperRecord(title=f"Replica paper {i}", abstract="Text.", source="test",
                                      arxiv_id=f"2612.0000{i}", published="2026-12-02T00:00:00Z") for i in range(3)])
    with fastlex._CATCH_UP:  # another catch-up of this node is running: ours has to wait for it
        code, body = readiness.readiness(lambda: conn, url, wait=0.2)
    assert code == 503 and body["ready"] is False and body["store"] == "ok"
    assert body["behind"]["tantivy"]["lag"] == body["rev"] > 0
    assert body["indexes"]["lexical"]["node"] is False  # the store's own index is never waited for
    readiness.CATCH_UP.kick(url).join(60)
    code, body = readiness.readiness(lambda: conn, url)
    assert code == 200 and body["indexes"]["tantivy"] == {"rev": body["rev"], "lag": 0, "node": True}
    conn.close()
