"""How fast ``paperwire db copy`` moves a store: SQLite -> PostgreSQL and SQLite -> SQLite.

The source is the demo corpus plus ``N`` synthetic snapshot records (bench/synth_snapshot.py),
lexically indexed (FTS5, vocabulary), with one 384-d float32 vector per paper (random:
synthetic vectors, the copy only moves bytes) and a few users, votes and library items.
Each copy runs as the real CLI (``python -m paperwire db copy``) into a fresh destination;
wall time and rows per second are printed as JSON. The PostgreSQL server is a throwaway
cluster (tests/pg_support.py: fsync off, as in the other PostgreSQL benchmarks).

    python bench/db_copy.py                # demo only (2,498 papers)
    python bench/db_copy.py --papers 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pg_bench_support import ROOT, machine, pg_version, start_cluster


def build_source(path: Path, papers: int) -> dict:
    import numpy as np

    from paperwire.demo import load_demo
    from paperwire.index.build import update_lexical
    from paperwire.sources import import_files
    from paperwire.store import accounts, embeddings
    from paperwire.store.db import connect
    from paperwire.store.papers import iter_papers

    t0 = time.perf_counter()
    conn = connect(path)
    load_demo(conn, progress=False)
    if papers:
        from synth_snapshot import write_snapshot

        snap = ROOT / "bench" / "out" / f"synth-{papers}.jsonl"
        if not snap.exists():
            snap.parent.mkdir(parents=True, exist_ok=True)
            write_snapshot(papers, snap)
        import_files(conn, [snap], progress=False)
    update_lexical(conn)
    rng = np.random.default_rng(7)
    hashes = [p["content_hash"] for p in iter_papers(conn)]
    for i in range(0, len(hashes), 5000):
        part = hashes[i:i + 5000]
        vecs = rng.standard_normal((len(part), 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        embeddings.put_embeddings(conn, "synthetic-384", part, vecs)
    for u in range(20):
        uid = accounts.create_user(conn, f"user{u}", f"user{u}@example.org", "x")
        for k in range(10):
            accounts.set_vote(conn, uid, 1 + (u * 37 + k * 11) % len(hashes), True)
    n = conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    conn.close()
    return {"papers": n, "build_s": round(time.perf_counter() - t0, 1), "bytes": path.stat().st_size}


def run_copy(src: Path, dst: str, batch: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PAPERWIRE_DB"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "paperwire", "db", "copy", str(src), dst, "--json",
                        "--batch", str(batch)], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"copy failed: {r.stderr}")
    report = json.loads(r.stdout)
    return {"wall_s": round(wall, 2), "copy_s": report["seconds"], "rows": report["copied"],
            "rows_per_s": round(report["copied"] / report["seconds"]), "tables": len(report["tables"]),
            "all_ok": report["ok"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=0, help="synthetic papers on top of the demo")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--work", default=str(ROOT / "bench" / "out" / "db_copy"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"source-{args.papers}.db"
    for p in work.glob("*"):
        if p.is_file():
            p.unlink()
    out = {"machine": machine(), "source": build_source(src, args.papers), "batch": args.batch}
    cluster = start_cluster()
    try:
        import psycopg

        with psycopg.connect(cluster.url(), autocommit=True) as c:
            c.execute("CREATE DATABASE copybench")
        url = cluster.url("copybench")
        os.environ["PAPERWIRE_INDEX_DIR"] = str(work / "index")
        out["postgres"] = pg_version(url)
        out["sqlite_to_postgres"] = run_copy(src, url, args.batch)
    finally:
        from paperwire.store.dialect import close_pools

        close_pools()
        cluster.stop()
    out["sqlite_to_sqlite"] = run_copy(src, str(work / "copy.db"), args.batch)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
