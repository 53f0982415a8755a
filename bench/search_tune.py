"""Tune lexical column weights and hybrid fusion on a BEIR *train* split; report test.

    python bench/search_tune.py /work/shared/bench/scifact --scratch /tmp/sf.db [--lexical-only]

Uses the same scratch database as ``paperwire eval --scratch`` (corpus imported once,
embeddings cached), so reruns only cost the queries. Candidate lists are computed once
per query and fusion settings are scored offline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from paperwire.index.evaluate import ndcg_at_k, prepare, recall_at_k
from paperwire.index.hybrid import FusionParams, fuse
from paperwire.index.lexical import lexical_search
from paperwire.index.query import QueryError, parse_query
from paperwire.sources.beir import load_qrels, load_queries


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("beir")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--lexical-only", action="store_true")
    ap.add_argument("--embedder", default="auto")
    args = ap.parse_args()
    folder = Path(args.beir)
    from paperwire.index.embeddings import get_embedder

    emb = None if args.lexical_only else get_embedder(args.embedder)
    conn = prepare(folder, Path(args.scratch), embedder=emb, semantic=emb is not None)
    queries = load_queries(folder)
    splits = {s: load_qrels(folder, s) for s in ("train", "test")}
    pid = {r[0]: r[1] for r in conn.execute("SELECT id, paper_id FROM papers")}
    parsed = {}
    for q, t in queries.items():
        try:
            parsed[q] = parse_query(t[:250])
        except QueryError:
            parsed[q] = None

    def score(split, runs):
        qrels = splits[split]
        return (round(mean(ndcg_at_k(runs.get(q, []), r, 10) for q, r in qrels.items()), 4),
                round(mean(recall_at_k(runs.get(q, []), r, 100) for q, r in qrels.items()), 4))

    def lex_runs(split, weights, k=200, engine="auto"):
        out = {}
        for q in splits[split]:
            pq = parsed.get(q)
            if pq and engine == "tantivy":
                out[q] = fast.search(pq.words, k, title_boost=tb) if pq.words else []
                continue
            out[q] = lexical_search(conn, pq, limit=k, weights=weights, engine=engine) if pq else []
        return out

    # ---- tantivy (the fast path): title boost on train
    from paperwire.index import fastlex

    fast = fastlex.fast_ready(conn)
    if fast is not None:
        res = []
        for tb in (0.0, 0.2, 0.4, 0.7, 1.0):
            runs = lex_runs("train", None, 100, engine="tantivy")
            nd, rc = score("train", {q: [pid[r] for r, _ in v] for q, v in runs.items()})
            res.append((nd, rc, tb))
            print(f"tantivy train title_boost={tb}: nDCG@10 {nd} R@100 {rc}", flush=True)
        tb = max(res)[2]
        t0 = time.perf_counter()
        runs = lex_runs("test", None, 100, engine="tantivy")
        dt = (time.perf_counter() - t0) / len(splits["test"]) * 1000
        print(f"tantivy BEST title_boost={tb}: test {score('test', {q: [pid[r] for r, _ in v] for q, v in runs.items()})} ({dt:.2f} ms/query)")
    tb = fastlex.TITLE_BOOST

    # ---- lexical: title / abstract weights on train
    grid = [(t, 1.0, 1.0) for t in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)]
    results = []
    for w in grid:
        runs = lex_runs("train", w, 100, engine="fts5")
        nd, rc = score("train", {q: [pid[r] for r, _ in v] for q, v in runs.items()})
        results.append((nd, rc, w))
        print(f"lexical train weights={w}: nDCG@10 {nd} R@100 {rc}", flush=True)
    best_w = max(results)[2]
    t0 = time.perf_counter()
    test_lex = lex_runs("test", best_w, 200, engine="fts5")
    dt = (time.perf_counter() - t0) / len(splits["test"]) * 1000
    print(f"lexical BEST {best_w}: test {score('test', {q: [pid[r] for r, _ in v] for q, v in test_lex.items()})} ({dt:.1f} ms/query)")
    if emb is None:
        return

    from paperwire.index.semantic import get_query_index

    idx = get_query_index(conn, emb.name)
    qvecs = {}
    all_q = list(splits["train"]) + list(splits["test"])
    t0 = time.perf_counter()
    vecs = emb.encode([parsed[q].text if parsed.get(q) else queries[q] for q in all_q])
    print(f"encoded {len(all_q)} queries in {time.perf_counter() - t0:.1f}s")
    for q, v in zip(all_q, vecs):
        qvecs[q] = v

    def cand(split, weights, pool):
        lex = lex_runs(split, weights, pool)
        out = {}
        for q in splits[split]:
            sem = idx.top(qvecs[q], pool)
            ids = list({r for r, _ in lex[q]} | {r for r, _ in sem})
            found, vs = idx.vectors_for(ids)
            cos = dict(zip(found, (vs @ qvecs[q]).tolist()))
            out[q] = (lex[q], sem, cos)
        return out

    sem_runs = {q: [pid[r] for r, _ in idx.top(qvecs[q], 100)] for q in splits["test"]}
    print(f"semantic only: test {score('test', sem_runs)}")
    configs = []
    for pool in (50, 100, 200):
        for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            configs.append(FusionParams("linear", a, 60, pool))
        for a, k in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7), (10, 30, 60, 100)):
            configs.append(FusionParams("rrf", a, k, pool))
    cache = {}
    best = None
    for w in [best_w]:
        for p in (50, 100, 200):
            cache[(w, p)] = cand("train", w, p)
        for cfg in configs:
            c = cache[(w, cfg.pool)]
            runs = {}
            for q, (lex, sem, cos) in c.items():
                fused = fuse(lex, sem, cfg, cosine_of=lambda ids, cos=cos: {r: cos[r] for r in ids if r in cos})
                runs[q] = [pid[r] for r, _ in fused[:100]]
            nd, rc = score("train", runs)
            if best is None or nd > best[0]:
                best = (nd, rc, w, cfg)
            print(f"hybrid train w={w} {cfg}: nDCG@10 {nd} R@100 {rc}", flush=True)
    nd, rc, w, cfg = best
    print(f"hybrid BEST on train: {nd} {rc} weights={w} {cfg}")
    c = cand("test", w, cfg.pool)
    runs = {}
    for q, (lex, sem, cos) in c.items():
        fused = fuse(lex, sem, cfg, cosine_of=lambda ids, cos=cos: {r: cos[r] for r in ids if r in cos})
        runs[q] = [pid[r] for r, _ in fused[:100]]
    print(f"hybrid test with the train-best settings: {score('test', runs)}")
    print(json.dumps({"weights": w, "fusion": cfg.__dict__}))


if __name__ == "__main__":
    main()
