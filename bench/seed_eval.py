"""nDCG@10 of our own judged queries over the demo corpus (the seed papers + 2007 arXiv records).

    python bench/seed_eval.py --db DEMO.db [--queries bench/seed_queries.jsonl] [--mode hybrid]

``bench/seed_queries.jsonl`` holds paraphrases, narrow needs (a detail of one sentence of an
abstract) and topical queries, written for this benchmark from the seed listings without
looking at search results; relevance is judged by title (2 = the target, 1 = partly). Each
query runs through the product's ``search()`` (first page of 10). To compare with an older
commit: ``PYTHONPATH=/tmp/old python bench/seed_eval.py --db COPY.db`` on its own copy of
the database (each tree keeps its own tantivy schema beside the file).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path

from paperwire.model import collapse_ws


def ndcg10(ranked: list[int], rel: dict[int, int]) -> float:
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    dcg = sum((2 ** rel.get(r, 0) - 1) / math.log2(i + 2) for i, r in enumerate(ranked[:10]))
    return dcg / idcg if idcg else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--queries", type=Path, default=Path(__file__).with_name("seed_queries.jsonl"))
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--per-query", action="store_true")
    ap.add_argument("--alpha", type=float, default=None, help="lexical weight with passages (FusionParams.passage_alpha)")
    ap.add_argument("--passage-weight", type=float, default=None)
    args = ap.parse_args()
    from paperwire.index.search import search
    from paperwire.store.db import connect

    conn = connect(args.db)
    fusion = None
    if args.alpha is not None or args.passage_weight is not None:
        from dataclasses import replace

        from paperwire.index.hybrid import DEFAULT_FUSION

        fusion = replace(DEFAULT_FUSION, **{k: v for k, v in (("passage_alpha", args.alpha),
                                                             ("passage_weight", args.passage_weight)) if v is not None})
    by_title: dict[str, list[int]] = defaultdict(list)
    for rowid, title in conn.execute("SELECT id, title FROM papers"):
        by_title[collapse_ws(title).lower()].append(int(rowid))
    queries = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    per_kind: dict[str, list[float]] = defaultdict(list)
    missing = 0
    search(conn, "warm up the model and the speller", mode=args.mode, limit=10)  # not timed
    t0 = time.process_time()
    for q in queries:
        rel: dict[int, int] = {}
        for title, grade in q["relevant"].items():
            ids = by_title.get(collapse_ws(title).lower())
            if not ids:
                missing += 1
                continue
            for r in ids:
                rel[r] = max(rel.get(r, 0), int(grade))
        hits = search(conn, q["query"], mode=args.mode, limit=10, **({"fusion": fusion} if fusion else {})).hits
        score = ndcg10([h.rowid for h in hits], rel)
        per_kind[q.get("kind", "all")].append(score)
        per_kind["all"].append(score)
        if args.per_query:
            print(f"{q['id']} {score:.3f} {q['query']}")
    cpu = 1e3 * (time.process_time() - t0) / max(1, len(queries))
    parts = ", ".join(f"{k} {sum(v) / len(v):.4f} (n {len(v)})" for k, v in sorted(per_kind.items()))
    label = f"{args.mode}" + (f", alpha {fusion.passage_alpha}, passage weight {fusion.passage_weight}" if fusion else "")
    print(f"{args.db.name} {args.queries.name} [{label}]: nDCG@10 {parts}; {missing} judged titles not found; {cpu:.1f} ms CPU/query")


if __name__ == "__main__":
    main()
