"""End-to-end query latency of search()/similar() on a large store (real query path).

    python bench/search_latency.py --db /tmp/b100k.db --vectors-from /tmp/scifact.db [--n-queries 300]

The store is a synthetic corpus built from real text (bench/synth_snapshot.py, imported
with ``paperwire import``) and indexed with ``paperwire index --lexical-only``. Vectors
may be synthetic: each paper gets a real SciFact MiniLM vector (from a scratch db made by
``paperwire eval``) plus Gaussian noise, stored under the real model name, so queries are
encoded by the real int8 MiniLM and searched in the real vector index.
Queries: SciFact claims (natural language) and 2-3 word queries drawn from corpus titles.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import time

import numpy as np

from paperwire.index.build import update_similar
from paperwire.index.embeddings import get_embedder
from paperwire.index.lexical import lexical_search
from paperwire.index.query import STOPWORDS, parse_query, tokens
from paperwire.index.search import search, similar
from paperwire.sources.beir import load_queries
from paperwire.store import embeddings as emb_store
from paperwire.store import search as sql
from paperwire.store.db import connect, transaction


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synth_vectors(conn, model: str, source_db: str, noise: float = 0.6, seed: int = 0) -> dict:
    """Give every paper without a vector a noisy copy of a real one (seconds spent)."""
    t0 = time.perf_counter()
    src = connect(source_db)
    _, real = emb_store.paper_vectors(src, model, include_hidden=True)
    src.close()
    if len(real) == 0:
        raise SystemExit(f"{source_db} has no {model} vectors: run `paperwire eval` with it as --scratch first")
    rng = np.random.default_rng(seed)
    rows = emb_store.papers_without_embedding(conn, model)
    hashes = list(dict.fromkeys(r["content_hash"] for r in rows))
    for i in range(0, len(hashes), 20000):
        part = hashes[i : i + 20000]
        base = real[rng.integers(0, len(real), len(part))]
        v = base + rng.normal(0, noise / np.sqrt(real.shape[1]), base.shape).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        emb_store.put_embeddings(conn, model, part, v)
    with transaction(conn):
        sql.set_state(conn, "model", model)
        sql.set_state(conn, f"embed_rev:{model}", sql.store_rev(conn))
    return {"synthetic_vectors": len(hashes), "seconds": round(time.perf_counter() - t0, 1)}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timeit(fn, items, warm=5):
    for it in items[:warm]:
        fn(it)
    ts, cpu = [], []
    for it in items:
        t, c = time.perf_counter(), time.process_time()
        fn(it)
        ts.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    # Wall time suffers from other jobs on a shared machine; process CPU time (all threads)
    # is what the query itself costs.
    return {"p50_ms": round(pct(ts, 50), 2), "p99_ms": round(pct(ts, 99), 2), "mean_ms": round(statistics.mean(ts), 2),
            "cpu_p50_ms": round(pct(cpu, 50), 2), "cpu_p99_ms": round(pct(cpu, 99), 2), "n": len(ts)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--vectors-from", required=True)
    ap.add_argument("--scifact", default="/work/shared/bench/scifact")
    ap.add_argument("--n-queries", type=int, default=300)
    ap.add_argument("--skip-similar-build", action="store_true")
    args = ap.parse_args()
    conn = connect(args.db)
    n_papers = conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    out: dict = {"papers": n_papers}
    emb = get_embedder("auto")
    from paperwire.index.build import update_lexical
    from paperwire.index.fastlex import update_fast

    t0 = time.perf_counter()
    out["lexical_update"] = {"fts5": update_lexical(conn), "tantivy": update_fast(conn)}
    out["lexical_update"]["seconds"] = round(time.perf_counter() - t0, 1)
    out["vectors"] = synth_vectors(conn, emb.name, args.vectors_from)
    if not args.skip_similar_build:
        t0 = time.perf_counter()
        out["similar_build"] = update_similar(conn, emb.name)
        out["similar_build"]["seconds"] = round(time.perf_counter() - t0, 1)
    rng = random.Random(0)
    claims = list(load_queries(args.scifact).values())
    rng.shuffle(claims)
    titles = [r[0] for r in conn.execute("SELECT title FROM papers ORDER BY random() LIMIT 2000")]
    short = []
    for t in titles:
        w = [x for x in tokens(t) if x not in STOPWORDS and len(x) > 3]
        if len(w) >= 2:
            short.append(" ".join(rng.sample(w, min(len(w), rng.choice((2, 3))))))
    n = args.n_queries
    qs_long, qs_short = claims[:n], short[:n]
    ids = [r[0] for r in conn.execute("SELECT paper_id FROM papers ORDER BY random() LIMIT ?", (n,))]
    t0 = time.perf_counter()
    search(conn, "warm up the vector index", mode="hybrid")
    out["vector_index_load_s"] = round(time.perf_counter() - t0, 2)
    res = {}
    for name, qs in (("claims", qs_long), ("short", qs_short)):
        res[f"lexical/{name}"] = timeit(lambda q: search(conn, q[:250], mode="lexical", limit=10), qs)
        res[f"lexical-fts5/{name}"] = timeit(
            lambda q: lexical_search(conn, parse_query(q[:250]), limit=10, engine="fts5"), qs[: max(20, n // 10)], warm=2)
        res[f"hybrid/{name}"] = timeit(lambda q: search(conn, q[:250], mode="hybrid", limit=10), qs)
        res[f"semantic/{name}"] = timeit(lambda q: search(conn, q[:250], mode="semantic", limit=10), qs)
        res[f"encode-only/{name}"] = timeit(lambda q: emb.encode([q[:250]]), qs)
    res["similar"] = timeit(lambda pid: similar(conn, pid, limit=10), ids)
    out["latency"] = res
    out["max_rss_mb"] = round(rss_mb())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
