"""Passage scoring at scale: the SQL read and scoring of ~100 candidates' passages, in a store
of N papers each with synthetic passage vectors (8 a paper, int8, the product's packing).

    python bench/synth_snapshot.py 1000000 /tmp/p1m.jsonl && paperwire --db /tmp/p1m.db import /tmp/p1m.jsonl
    python bench/passages_scale.py --db /tmp/p1m.db [--fill] [-n 2000] [--candidates 100]

``--fill`` writes the passage rows (random unit vectors; what is measured is the lookup, not
the quality). Then ``n`` searches' worth of lookups: the candidate rowids are drawn at random
(no locality: a worst case for the page cache), timed as ``best_passage_cosines(passage_rows())``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--fill", action="store_true")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--model", default="minilm-l6-int8-onnx")
    args = ap.parse_args()
    from paperwire.index.passages import best_passage_cosines
    from paperwire.store import passages as ps
    from paperwire.store.db import connect, transaction

    conn = connect(args.db)
    rng = np.random.default_rng(0)
    if args.fill:
        t0 = time.perf_counter()
        cur = conn.execute("SELECT content_hash FROM papers ORDER BY id")
        done = 0
        while True:
            hashes = [r[0] for r in cur.fetchmany(20000)]
            if not hashes:
                break
            v = rng.standard_normal((len(hashes) * 8, 384)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            with transaction(conn):
                ps.put_passages(conn, args.model, [(h, v[8 * i : 8 * i + 8]) for i, h in enumerate(hashes)])
            done += len(hashes)
        print(f"filled {done} papers in {time.perf_counter() - t0:.0f} s", flush=True)
    stats = ps.passage_stats(conn, args.model)
    size = os.path.getsize(args.db)
    ids = np.array([r[0] for r in conn.execute("SELECT id FROM papers")], np.int64)
    print(f"{len(ids)} papers, {stats['papers']} with passages ({stats['passages']} passages, "
          f"{stats['bytes'] / 2**30:.2f} GiB of vectors; file {size / 2**30:.2f} GiB)", flush=True)
    q = rng.standard_normal(384).astype(np.float32)
    q /= np.linalg.norm(q)
    for label in ("first pass", "second pass"):
        rng2 = np.random.default_rng(1)
        times, cpu = [], time.process_time()
        for _ in range(args.n):
            cand = rng2.choice(ids, args.candidates, replace=False).tolist()
            t = time.perf_counter()
            best_passage_cosines(ps.passage_rows(conn, args.model, cand), q)
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1e3
        print(f"{label}: {args.n} lookups of {args.candidates} random candidates: p50 {np.percentile(ms, 50):.2f} ms, "
              f"p99 {np.percentile(ms, 99):.2f} ms, CPU {1e3 * (time.process_time() - cpu) / args.n:.2f} ms each", flush=True)


if __name__ == "__main__":
    main()
