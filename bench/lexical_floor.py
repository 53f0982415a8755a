"""Tune ``FusionParams.lexical_floor`` (BM25 scaled by max(best, floor x the query's ideal
score)) on SciFact train and on our own demo queries; SciFact test printed for the chosen one.

    python bench/lexical_floor.py ../shared/bench/scifact --scratch /tmp/h5/sf2.db --demo /tmp/h5/demo/new.db \\
        [--floors 0,0.3,0.5,0.7,1.0] [--alphas 0.45] [--choose 0.5]

The scratch database is a ``paperwire eval`` one (indexed, passages included); the demo
database a ``paperwire demo --no-serve`` + ``paperwire index`` one. Runs the product's
``search()``: first page of 20 for SciFact (as the site), 10 for the demo queries
(bench/seed_queries.jsonl, bench/seed_queries_hard.jsonl; see bench/seed_eval.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_eval import ndcg10  # noqa: E402


def demo_scores(conn, files, fusion) -> dict[str, float]:
    from paperwire.index.search import search
    from paperwire.model import collapse_ws

    by_title: dict[str, list[int]] = {}
    for rowid, title in conn.execute("SELECT id, title FROM papers"):
        by_title.setdefault(collapse_ws(title).lower(), []).append(int(rowid))
    out = {}
    for f in files:
        scores = []
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            q = json.loads(line)
            rel = {r: int(g) for t, g in q["relevant"].items() for r in by_title.get(collapse_ws(t).lower(), [])}
            scores.append(ndcg10([h.rowid for h in search(conn, q["query"], limit=10, fusion=fusion).hits], rel))
        out[f.stem] = sum(scores) / len(scores)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--demo", required=True, type=Path)
    ap.add_argument("--floors", default="0,0.3,0.5,0.7,1.0")
    ap.add_argument("--alphas", default="0.45")
    ap.add_argument("--choose", type=float, default=None, help="floor whose SciFact test to print")
    args = ap.parse_args()
    from paperwire.index.evaluate import evaluate_beir
    from paperwire.index.hybrid import DEFAULT_FUSION
    from paperwire.store.db import connect

    here = Path(__file__).resolve().parent
    files = [here / "seed_queries.jsonl", here / "seed_queries_hard.jsonl"]
    demo = connect(args.demo)
    for alpha in [float(a) for a in args.alphas.split(",")]:
        for floor in [float(f) for f in args.floors.split(",")]:
            fusion = replace(DEFAULT_FUSION, lexical_floor=floor, passage_alpha=alpha)
            train = evaluate_beir(args.beir, split="train", db_path=args.scratch, fusion=fusion)
            own = demo_scores(demo, files, fusion)
            print(f"alpha {alpha} floor {floor}: SciFact train nDCG@10 {train['ndcg@10']:.4f}; own queries "
                  + ", ".join(f"{k} {v:.4f}" for k, v in own.items()), flush=True)
    if args.choose is not None:
        fusion = replace(DEFAULT_FUSION, lexical_floor=args.choose)
        test = evaluate_beir(args.beir, split="test", db_path=args.scratch, fusion=fusion)
        print(f"chosen floor {args.choose}: SciFact test nDCG@10 {test['ndcg@10']:.4f} recall@100 {test['recall@100']:.4f}")


if __name__ == "__main__":
    main()
