"""Lexical engine comparison: SQLite FTS5 vs tantivy vs bm25s (quality, latency, updates).

    python bench/search_lexical_engines.py /work/shared/bench/scifact --scratch /tmp/sf.db [--big /tmp/b100k.db]

Quality: SciFact test nDCG@10 (queries parsed exactly as search() does: stopwords out).
FTS5 and tantivy are paperwire's own indexes (built by ``paperwire eval --scratch``);
bm25s is built here from the same title + abstract text with PyStemmer's English stemmer.
With ``--big`` (a store indexed by ``paperwire index``), also latency at that size and
the cost of adding one paper (bm25s has no incremental add: a rebuild).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from paperwire.index.evaluate import ndcg_at_k
from paperwire.index.fastlex import fast_ready
from paperwire.index.lexical import lexical_search
from paperwire.index.query import STOPWORDS, parse_query, tokens
from paperwire.sources.beir import load_qrels, load_queries
from paperwire.store.db import connect


def pct(ts, p):
    ts = sorted(ts)
    return round(ts[min(len(ts) - 1, int(round(p / 100 * (len(ts) - 1))))], 3)


def build_bm25s(conn):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids, texts = [], []
    for r in conn.execute("SELECT id, title, abstract FROM papers ORDER BY id"):
        ids.append(r[0])
        texts.append(f"{r[1]} {r[2]}")
    t0 = time.perf_counter()
    tok = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    model = bm25s.BM25()
    model.index(tok, show_progress=False)
    return model, ids, stemmer, time.perf_counter() - t0


def bm25s_search(model, ids, stemmer, text, k):
    import bm25s

    q = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False)
    if not q.vocab:
        return []
    docs, scores = model.retrieve(q, k=min(k, len(ids)), show_progress=False, n_threads=1)
    return [(ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def engines(conn):
    fast = fast_ready(conn)
    model, ids, stemmer, build_s = build_bm25s(conn)
    return {
        "fts5": lambda pq, k: lexical_search(conn, pq, limit=k, engine="fts5"),
        "tantivy": (lambda pq, k: fast.search(pq.words, k)) if fast else None,
        "bm25s": lambda pq, k: bm25s_search(model, ids, stemmer, " ".join(pq.words), k),
    }, build_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("beir")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--big", default=None)
    args = ap.parse_args()
    out = {}
    conn = connect(args.scratch)
    pid = {r[0]: r[1] for r in conn.execute("SELECT id, paper_id FROM papers")}
    qs = load_queries(args.beir)
    qrels = load_qrels(args.beir, "test")
    fns, build_s = engines(conn)
    out["scifact_bm25s_build_s"] = round(build_s, 2)
    for name, fn in fns.items():
        if fn is None:
            continue
        nd, ts = [], []
        for q, rels in qrels.items():
            pq = parse_query(qs[q][:250])
            t = time.perf_counter()
            hits = fn(pq, 10)
            ts.append((time.perf_counter() - t) * 1000)
            nd.append(ndcg_at_k([pid[r] for r, _ in hits], rels))
        out[f"scifact/{name}"] = {"ndcg@10": round(statistics.mean(nd), 4), "p50_ms": pct(ts, 50), "p99_ms": pct(ts, 99)}
        print(name, out[f"scifact/{name}"], flush=True)
    if args.big:
        big = connect(args.big)
        n = big.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        fns, build_s = engines(big)
        out["big_papers"] = n
        out["big_bm25s_full_build_s"] = round(build_s, 1)
        rng = random.Random(0)
        claims = [parse_query(q[:250]) for q in rng.sample(list(qs.values()), 200)]
        short = []
        for (t,) in big.execute("SELECT title FROM papers ORDER BY random() LIMIT 400"):
            w = [x for x in tokens(t) if x not in STOPWORDS and len(x) > 3]
            if len(w) >= 2:
                short.append(parse_query(" ".join(rng.sample(w, min(3, len(w))))))
        for name, fn in fns.items():
            if fn is None:
                continue
            for qname, qlist in (("claims", claims[:60] if name == "fts5" else claims), ("short", short[:200])):
                ts = []
                for pq in qlist:
                    t = time.perf_counter()
                    fn(pq, 10)
                    ts.append((time.perf_counter() - t) * 1000)
                out[f"big/{name}/{qname}"] = {"p50_ms": pct(ts, 50), "p99_ms": pct(ts, 99), "n": len(ts)}
                print(name, qname, out[f"big/{name}/{qname}"], flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
