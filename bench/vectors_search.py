"""Vector-part speed and recall: exact numpy vs usearch HNSW (int8) at 100k / 1M vectors,
plus loading an index from SQLite blobs and from the HNSW cache file.

    python bench/vectors_search.py [--sizes 100000,1000000] [--queries 200] [--sqlite 100000]

Vectors are synthetic but shaped like real ones: real all-MiniLM-L6-v2 embeddings of
abstracts from ../shared (cached in ~/.cache/paperwire/bench/), mixed pairwise and noised so the
corpus has the clustered structure of real text. Queries are fresh mixes (not in the index).
The exact index is the anchor for recall@10 in the same run.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from embed_common import arxiv_abstracts, machine, now, rss_mb

CACHE = Path(os.environ.get("PAPERWIRE_BENCH_CACHE", Path.home() / ".cache" / "paperwire" / "bench"))


def base_vectors(n: int = 1000) -> np.ndarray:
    """Real ONNX int8 embeddings of abstracts: SciFact's 5,183 if bench/embed_quality.py
    cached them, else ``n`` arXiv abstracts (embedded now, cached between runs)."""
    scifact = CACHE / "scifact_minilm-l6-int8-onnx.npy"
    if scifact.exists():
        return np.load(scifact)
    path = CACHE / f"abstract_vectors_{n}.npy"
    if path.exists():
        return np.load(path)
    from paperwire.index.embeddings import get_embedder, paper_text

    texts = [paper_text(t, a) for t, a in arxiv_abstracts(n)]
    vecs = get_embedder("onnx").encode(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def synth(base: np.ndarray, n: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors: a*base[i] + (1-a)*base[j] + noise, renormalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        i = rng.integers(0, len(base), m)
        j = rng.integers(0, len(base), m)
        a = rng.uniform(0.55, 1.0, (m, 1)).astype(np.float32)
        v = a * base[i] + (1 - a) * base[j] + rng.standard_normal((m, base.shape[1]), dtype=np.float32) * 0.03
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[s : s + m] = v
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def bench_size(n: int, base: np.ndarray, nq: int, expansions: list[int], hnsw: bool) -> None:
    from paperwire.index.vectors import VectorIndex, usearch_index_class

    print(f"\n## {n:,} vectors (384-d)")
    vecs = synth(base, n, seed=n)
    queries = synth(base, nq, seed=7)
    ids = np.arange(1, n + 1, dtype=np.int64)

    rss0 = rss_mb()
    t = time.perf_counter()
    exact = VectorIndex("bench", 384, kind="exact")
    exact.add(ids, vecs)
    build = time.perf_counter() - t
    lat, truth = [], []
    for q in queries:
        t = time.perf_counter()
        r, _ = exact.search(q, 10)
        lat.append((time.perf_counter() - t) * 1000)
        truth.append(set(r.tolist()))
    print(f"| exact numpy float32 | build {build:.2f} s | query p50 {pct(lat, .5):.2f} ms, p95 {pct(lat, .95):.2f} ms "
          f"| recall@10 1.000 | peak RSS +{rss_mb() - rss0:.0f} MiB |")
    # A filtered query: 5% of the corpus allowed (e.g. a category filter).
    allowed = ids[::20]
    lat = []
    for q in queries[:50]:
        t = time.perf_counter()
        exact.search(q, 10, allowed=allowed)
        lat.append((time.perf_counter() - t) * 1000)
    print(f"| exact, 5% allowed filter | | query p50 {pct(lat, .5):.2f} ms | | |")
    if not hnsw:
        return
    del exact
    gc.collect()

    usearch_index_class()  # fail early without the ann extra

    rss0 = rss_mb()
    t = time.perf_counter()
    ann = VectorIndex("bench", 384, kind="hnsw")
    ann.add(ids, vecs)
    build = time.perf_counter() - t
    mem = ann._impl.index.memory_usage / 2**20
    from paperwire.index.vectors import HNSW_DTYPE

    print(f"| usearch HNSW {HNSW_DTYPE} M=16 ef_add=128 | build {build:.1f} s ({n / build:,.0f} vec/s, {os.cpu_count()} threads) "
          f"| | | index {mem:.0f} MiB, peak RSS +{rss_mb() - rss0:.0f} MiB |")
    for ef in expansions:
        ann._impl.index.expansion_search = ef
        lat, rec = [], []
        for q, tr in zip(queries, truth):
            t = time.perf_counter()
            r, _ = ann.search(q, 10)
            lat.append((time.perf_counter() - t) * 1000)
            rec.append(len(tr & set(r.tolist())) / 10)
        print(f"| HNSW ef_search={ef} | | query p50 {pct(lat, .5):.3f} ms, p95 {pct(lat, .95):.3f} ms "
              f"| recall@10 {statistics.mean(rec):.3f} | |")
    ann._impl.index.expansion_search = 96
    lat = []
    for q in queries[:50]:
        t = time.perf_counter()
        ann.search(q, 10, allowed=allowed)
        lat.append((time.perf_counter() - t) * 1000)
    print(f"| HNSW, 5% allowed filter ({len(allowed):,} rowids) | | query p50 {pct(lat, .5):.2f} ms | | |")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.usearch"
        t = time.perf_counter()
        ann._impl.index.save(str(p))
        save = time.perf_counter() - t
        Index = usearch_index_class()

        t = time.perf_counter()
        Index.restore(str(p), view=False)
        restore = time.perf_counter() - t
        print(f"| HNSW cache file | save {save:.2f} s, restore {restore:.2f} s, {p.stat().st_size / 2**20:.0f} MiB | | | |")


def bench_sqlite(n: int, base: np.ndarray) -> None:
    """Load ``n`` vectors from SQLite blobs (the durable copy) into exact / HNSW indexes."""
    from paperwire.index.vectors import VectorIndex, usearch_index_class
    from paperwire.store import embeddings as store_emb
    from paperwire.store.db import connect, transaction

    print(f"\n## SQLite source of truth, {n:,} papers")
    vecs = synth(base, n, seed=11)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "pw.db"
        conn = connect(db)
        t = time.perf_counter()
        with transaction(conn):
            conn.executemany(
                "INSERT INTO papers (id, paper_id, id_kind, title, title_norm, feed_date, source, first_seen, "
                "content_hash, record_hash, rev) VALUES (?, ?, 'external', 't', 't', '2024-01-01', 'bench', '', ?, '', 1)",
                ((i + 1, f"b{i}", f"h{i}") for i in range(n)),
            )
            for s in range(0, n, 50_000):
                store_emb.put_embeddings(conn, "bench", [f"h{i}" for i in range(s, min(n, s + 50_000))], vecs[s : s + 50_000])
        print(f"| write {n:,} papers + vectors | {time.perf_counter() - t:.1f} s | DB {db.stat().st_size / 2**20:.0f} MiB |")
        t = time.perf_counter()
        idx = VectorIndex.load(conn, "bench", kind="exact")
        print(f"| VectorIndex.load exact | {time.perf_counter() - t:.2f} s | {len(idx):,} vectors |")
        t = time.perf_counter()
        stale = idx.is_stale(conn)
        print(f"| is_stale() | {(time.perf_counter() - t) * 1000:.2f} ms | {stale} |")
        try:
            usearch_index_class()
        except ImportError:
            conn.close()
            return
        t = time.perf_counter()
        idx = VectorIndex.load(conn, "bench", kind="hnsw")
        print(f"| VectorIndex.load hnsw, no cache (build + save) | {time.perf_counter() - t:.1f} s | |")
        t = time.perf_counter()
        idx = VectorIndex.load(conn, "bench", kind="hnsw")
        print(f"| VectorIndex.load hnsw, from cache | {time.perf_counter() - t:.2f} s | source={idx.load_info['source']} |")
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef", default="32,64,96,128")
    ap.add_argument("--sqlite", type=int, default=100_000, help="papers for the SQLite load test (0: skip)")
    ap.add_argument("--no-hnsw", action="store_true")
    args = ap.parse_args()
    print(f"# vectors_search  {now()}  {machine()}")
    base = base_vectors()
    print(f"base: {len(base)} real abstract embeddings (onnx int8), synthetic mixes + noise")
    for n in [int(x) for x in args.sizes.split(",") if x]:
        bench_size(n, base, args.queries, [int(x) for x in args.ef.split(",")], not args.no_hnsw)
        gc.collect()
    if args.sqlite:
        bench_sqlite(args.sqlite, base)


if __name__ == "__main__":
    main()
