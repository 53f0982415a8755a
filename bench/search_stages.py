"""Where the CPU of a never-seen web search goes, stage by stage, in-process.

    python bench/search_stages.py --db bench/out/web-100k.db [-n 3000]

Runs what ``GET /api/papers/search?limit=20&q=...`` runs for a cache miss (the site's
``run_search``, the HF-shaped items, the JSON body) over ``n`` distinct 1-3 word queries
(``bench/load_web.py``'s never-seen queries), after 50 warm-up queries, and times each
stage by wrapping the functions the search calls. Stages nest: "fuse" includes "cosines".
The HTTP layer (uvicorn, FastAPI, the thread hop) is not in these figures; ``load_web.py``
reports the server's whole CPU per request.

To compare with an older commit in the same run: ``git worktree add /tmp/old REV`` and
``PYTHONPATH=/tmp/old python bench/search_stages.py ...`` (stages the old code lacks are skipped).
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `paperwire serve` runs
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_web import make_queries  # noqa: E402

STAGES = [  # (module, attribute path, label)
    ("paperwire.index.search", "parse_query", "parse"),
    ("paperwire.index.search", "lexical_search", "lexical"),
    ("paperwire.index.semantic", "encode_query", "query embedding"),
    ("paperwire.index.semantic", "QueryIndex.top", "vector top-k"),
    ("paperwire.index.search", "fuse", "fuse"),
    ("paperwire.index.semantic", "QueryIndex.vectors_for", "  cosines of candidates"),
    ("paperwire.index.passages", "blend_cosines", "  passage scores"),
    ("paperwire.index.search", "lexical_strength", "lexical floor + coverage"),
    ("paperwire.index.resultset", "_Flags.hidden", "hidden set"),
    ("paperwire.index.resultset", "_Flags.meta", "candidate flags"),
    ("paperwire.index.search", "_MetaMemo.get", "candidate flags"),
    ("paperwire.store.papers", "get_papers_by_rowid", "paper rows"),
    ("paperwire.index.search", "highlight", "snippets"),
]


def wrap_stages(totals: collections.Counter) -> None:
    import importlib

    for module_name, path, label in STAGES:
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for p in parents:
            owner = getattr(owner, p, None)
        fn = getattr(owner, name, None) if owner is not None else None
        if fn is None:
            continue  # not in this version of the code

        def timed(*a, _fn=fn, _label=label, **kw):
            t = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                totals[_label] += time.perf_counter() - t

        setattr(owner, name, functools.wraps(fn)(timed))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()

    from paperwire.store.db import connect
    from paperwire.web import hf, searching
    from paperwire.web.context import JSONResponse  # each version's own JSON encoder

    totals: collections.Counter = collections.Counter()
    wrap_stages(totals)
    queries = make_queries(args.db, args.n + 50, args.seed, mixed=True)
    conn = connect(args.db)
    for q in queries[:50]:
        searching.run_search(conn, q, limit=20)
    totals.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    for q in queries[50:]:
        t = time.perf_counter()
        res = searching.run_search(conn, q, limit=20)
        totals["search (all of it)"] += time.perf_counter() - t
        t = time.perf_counter()
        items = [hf.daily_item(h.paper, "http://x", snippet=h.snippet, score=h.score) for h in res.hits]
        totals["HF-shaped items"] += time.perf_counter() - t
        t = time.perf_counter()
        JSONResponse(items)
        totals["JSON body"] += time.perf_counter() - t
    n = len(queries) - 50
    print(f"{n} never-seen queries on {args.db}: {(time.perf_counter() - t0) / n * 1000:.3f} ms wall, "
          f"{(time.process_time() - c0) / n * 1000:.3f} ms CPU per query")
    for label, s in totals.most_common():
        print(f"  {label:26s} {s / n * 1000:.3f} ms")


if __name__ == "__main__":
    main()
