"""Hybrid quality by fusion pool size, through the product path, as the site asks (20 hits).

    python bench/fusion_pool.py ../shared/bench/scifact --scratch /tmp/pwt/sf.db [--pools 50,100] [--limit 20]

``paperwire eval`` asks for 100 hits a query, and the pool is never smaller than the hits
asked for plus one, so it cannot show what a 20-hit page ranks with. This runs ``search()``
with ``limit`` hits and each pool on the train and the test split (tune on train only) and
prints nDCG@10 (Recall@100 is meaningless below 100 hits and left out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperwire.index.evaluate import default_scratch, prepare, run_queries, score_run
from paperwire.index.hybrid import FusionParams
from paperwire.sources.beir import load_qrels, load_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir_dir", type=Path)
    ap.add_argument("--scratch", type=Path, default=None)
    ap.add_argument("--pools", default="50,100")
    ap.add_argument("--limit", type=int, default=20)
    args = ap.parse_args()
    conn = prepare(args.beir_dir, args.scratch or default_scratch(args.beir_dir))
    queries = load_queries(args.beir_dir)
    for split in ("train", "test"):
        qrels = load_qrels(args.beir_dir, split)
        qs = {q: queries[q] for q in qrels if q in queries}
        for pool in (int(p) for p in args.pools.split(",")):
            run = run_queries(conn, qs, mode="hybrid", k=args.limit, fusion=FusionParams(pool=pool))
            print(f"{split} ({len(qs)} queries) pool {pool}, {args.limit} hits: nDCG@10 {score_run(run, qrels)['ndcg@10']}")


if __name__ == "__main__":
    main()
