"""CPU per request of one PostgreSQL node against one SQLite node, same corpus (issue 13).

    PYTHONPATH=../tests python bench/pg_vs_sqlite.py [--corpus demo,100k] [--requests 200] [--rounds 2]

For each corpus it builds the same store twice, a SQLite file and a database of a
throwaway PostgreSQL cluster (tests/pg_support.py):

- ``demo``: the bundled demo corpus, imported as ``paperwire demo`` does (paperwire.demo:
  the 498 seed listing papers and 2,000 dated arXiv records);
- ``100k``: 100,000 synthetic arXiv snapshot records (bench/synth_snapshot.py), imported
  with ``paperwire.sources.import_files`` (the CLI's path).

Each store gets its lexical indexes (``update_index(semantic=False)``: FTS5 + tantivy on
SQLite, the tantivy replica on PostgreSQL; no embeddings, so search answers lexically on
both, the same work on both but for the store). Then one ``paperwire serve --no-cache``
node (1 worker) per engine, and, in alternating rounds (SQLite, PostgreSQL, SQLite, ...,
so that the machine's other load falls on both alike), N requests one after another on a
kept-alive connection per scenario:

- ``search``: ``GET /api/papers/search?q=...``, every query distinct (1-3 title words,
  seeded; the same list for both engines), so neither a page cache nor a result cache
  can answer; the cache is off anyway (``--no-cache``);
- ``home``: ``GET /``, rendered afresh each time (``--no-cache``).

CPU per request = utime + stime (/proc) of the node's processes over the round / N, and
for PostgreSQL also with every process of the cluster (the backends serving the node and
the server's own background processes), "node + database". Ratios PG / SQLite per
scenario: target <= 1.3x.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pg_bench_support import ROOT, machine, pg_version, postmaster_pid, start_cluster, tree_cpu  # noqa: E402

STOP = set("a an and are as at be by for from in into is of on or the to with via using toward towards".split())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_store(target: str, corpus: str) -> dict:
    """Import ``corpus`` into ``target`` and build its lexical indexes; seconds taken."""
    from paperwire.index.build import update_index
    from paperwire.sources import import_files
    from paperwire.store.db import connect

    conn = connect(target)
    t0 = time.perf_counter()
    if corpus == "demo":
        from paperwire.demo import load_demo

        report = load_demo(conn, progress=False)
    else:
        snap = HERE / "out" / f"synth-{corpus}.jsonl"
        if not snap.exists():
            from synth_snapshot import write_snapshot

            n = int(corpus.rstrip("k")) * 1000
            write_snapshot(n, snap)
        report = import_files(conn, [snap], progress=False)
    t1 = time.perf_counter()
    update_index(conn, semantic=False)
    from paperwire.index.fastlex import fast_ready

    # Both engines must answer from tantivy; a SQLite store whose tantivy directory is
    # stale (say, built by older code) answers from FTS5, several times slower at 100k.
    out = {"import_s": round(t1 - t0, 1), "index_s": round(time.perf_counter() - t1, 1),
           "import": report.summary() if report else "already loaded",
           "tantivy_ready": fast_ready(conn) is not None}
    conn.close()
    return out


def make_queries(target: str, n: int, seed: int = 11) -> list[str]:
    """``n`` distinct queries of 1-3 consecutive title words (stop words left out)."""
    from paperwire.store.db import connect

    conn = connect(target)
    titles = [r[0] for r in conn.execute("SELECT title FROM papers WHERE hidden=0 ORDER BY id")]
    conn.close()
    rng = random.Random(seed)
    out, seen = [], set()
    for _ in range(n * 50):
        if len(out) >= n:
            break
        words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{2,}", rng.choice(titles)) if w.lower() not in STOP]
        if not words:
            continue
        k = rng.choice((1, 2, 2, 3))
        start = rng.randrange(max(1, len(words) - k + 1))
        q = " ".join(words[start:start + k])
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def start_node(target: str, port: int, index_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PAPERWIRE_INDEX_DIR": str(index_dir)}
    env.pop("PAPERWIRE_DB", None)
    cmd = [sys.executable, "-m", "paperwire", "--db", target, "serve", "--port", str(port), "--no-cache"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("node died: " + proc.stderr.read().decode()[-2000:])
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                c.close()
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("node did not come up")


def stop_node(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def fetch_all(port: int, paths: list[str]) -> dict:
    """GET every path on one kept-alive connection; statuses and the search modes seen."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    statuses: dict[int, int] = {}
    modes: set[str] = set()
    for path in paths:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.getheader("X-Search-Mode"):
            modes.add(resp.getheader("X-Search-Mode"))
    conn.close()
    return {"statuses": statuses, "modes": sorted(modes)}


def scenario_paths(name: str, queries: list[str]) -> list[str]:
    if name == "search":
        return ["/api/papers/search?" + urllib.parse.urlencode({"q": q}) for q in queries]
    return ["/"] * len(queries)


def measure(corpus: str, targets: dict, pm_pid: int, n: int, rounds: int, tmp: Path) -> dict:
    queries = make_queries(targets["sqlite"], n * rounds + 40)
    warm, queries = queries[:40], queries[40:]
    nodes = {}
    try:
        for engine, target in targets.items():
            port = free_port()
            nodes[engine] = (start_node(target, port, tmp / "index"), port)
            for scen in ("search", "home"):  # warm: templates, tantivy searchers, pools
                fetch_all(port, scenario_paths(scen, warm[:20 if scen == "search" else 10]))
        results: dict = {}
        for scen in ("search", "home"):
            for r in range(rounds):
                part = queries[r * n:(r + 1) * n]
                for engine in targets:
                    proc, port = nodes[engine]
                    paths = scenario_paths(scen, part)
                    node0, db0, t0 = tree_cpu(proc.pid), tree_cpu(pm_pid), time.perf_counter()
                    got = fetch_all(port, paths)
                    wall = time.perf_counter() - t0
                    node, db = tree_cpu(proc.pid) - node0, tree_cpu(pm_pid) - db0
                    acc = results.setdefault(scen, {}).setdefault(engine, {"node_s": 0.0, "db_s": 0.0, "wall_s": 0.0,
                                                                            "requests": 0, "statuses": {}, "modes": set()})
                    acc["node_s"] += node
                    acc["db_s"] += db if engine == "postgresql" else 0.0
                    acc["wall_s"] += wall
                    acc["requests"] += len(paths)
                    for k, v in got["statuses"].items():
                        acc["statuses"][k] = acc["statuses"].get(k, 0) + v
                    acc["modes"] |= set(got["modes"])
        out = {}
        for scen, per in results.items():
            row = {}
            for engine, acc in per.items():
                reqs = acc["requests"]
                row[engine] = {
                    "node_ms": round(1000 * acc["node_s"] / reqs, 2),
                    "node_plus_db_ms": round(1000 * (acc["node_s"] + acc["db_s"]) / reqs, 2),
                    "wall_ms": round(1000 * acc["wall_s"] / reqs, 2), "requests": reqs,
                    "statuses": acc["statuses"], "modes": sorted(acc["modes"]),
                }
            s, p = row["sqlite"], row["postgresql"]
            row["ratio_node"] = round(p["node_ms"] / s["node_ms"], 2)
            row["ratio_node_plus_db"] = round(p["node_plus_db_ms"] / s["node_plus_db_ms"], 2)
            out[scen] = row
        return out
    finally:
        for proc, _ in nodes.values():
            stop_node(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="demo,100k", help="comma-separated: demo, 100k (or another Nk)")
    ap.add_argument("--requests", type=int, default=200, help="requests per scenario, engine and round")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pw-pgvs-"))
    os.environ["PAPERWIRE_INDEX_DIR"] = str(tmp / "index")  # this process and the nodes: the same replicas
    info = {"machine": machine(), "command": "python bench/pg_vs_sqlite.py " + " ".join(sys.argv[1:]),
            "requests_per_scenario_engine_round": args.requests, "rounds": args.rounds, "corpora": {}}
    cluster = start_cluster()
    try:
        info["postgresql"] = pg_version(cluster.url()) + " (throwaway cluster: fsync=off, shared_buffers=32MB)"
        pm = postmaster_pid(cluster)
        for corpus in args.corpus.split(","):
            targets = {"sqlite": str(tmp / f"{corpus}.db"), "postgresql": cluster.create_database()}
            built = {engine: build_store(t, corpus) for engine, t in targets.items()}
            from paperwire.store.dialect import close_pools

            close_pools()
            res = measure(corpus, targets, pm, args.requests, args.rounds, tmp)
            # The same check with the code as it is now, in a new process (as the nodes ran):
            # a tree changed mid-run shows here.
            check = subprocess.run(
                [sys.executable, "-c", "import sys; from paperwire.store.db import connect; "
                 "from paperwire.index.fastlex import fast_ready; print(fast_ready(connect(sys.argv[1])) is not None)",
                 targets["sqlite"]], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            built["sqlite"]["tantivy_ready_after"] = check.stdout.strip() == "True"
            info["corpora"][corpus] = {"built": built, "results": res}
            print(json.dumps({corpus: info["corpora"][corpus]}), file=sys.stderr)
        info["load_after"] = machine()["load_1_5_15"]
        print(json.dumps(info, indent=1))
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
