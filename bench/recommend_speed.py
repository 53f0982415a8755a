"""For-you speed at scale: train + score, and the /for-you page, for a reader with 1,000 signals.

    python bench/recommend_speed.py [--papers 1000000] [--signals 1000] [--runs 60]

The store holds ``--papers`` papers imported with paperwire's importer (short synthetic titles
and abstracts over a 2,000-word vocabulary, 1,000 papers a day, so a 30-day window holds
~30,000 candidates) and the product's lexical indexes (FTS5 + tantivy). Vectors are synthetic
but shaped like real ones (bench/vectors_search.py's mixes of real MiniLM vectors) and live in
the product's ``VectorIndex`` (exact kind), put in place as the process's shared index instead
of being written to SQLite as 1.5 GB of blobs first. The reader saved ``--signals`` papers of
the 30-day window. The store is cached in ~/.cache/paperwire/bench/recommend_speed/.

* train + score: the model cache is emptied before every run, so each run reads the signals,
  samples negatives, trains the LR, runs the BM25 profile query and scores the month window;
* page: ``GET /for-you?window=month`` through the real app (TestClient, signed in), warm.
"""

from __future__ import annotations

import argparse
import os

# As the web server does (paperwire.web.server): one BLAS thread per process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import random
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from embed_common import machine, now, rss_mb
from vectors_search import base_vectors, synth

CACHE = Path(os.environ.get("PAPERWIRE_BENCH_CACHE", Path.home() / ".cache" / "paperwire" / "bench"))
PER_DAY = 1000
MODEL = "bench-synth-384"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))]


def build_store(path: Path, n: int) -> None:
    from paperwire.index.build import update_index
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord
    from paperwire.store.db import connect

    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(2000)]
    first = date(2024, 1, 1)

    def recs():
        for i in range(n):
            day = first + timedelta(days=i // PER_DAY)
            topic = rng.randrange(40)
            words = [vocab[(topic * 50 + rng.randrange(50)) % 2000] for _ in range(12)] + rng.sample(vocab, 6)
            yield PaperRecord(source="bench", external_id=f"bench-{i}", title=" ".join(words[:8]), abstract=" ".join(words), authors=[f"A{rng.randrange(50000)}"],
                              categories=[f"cs.T{chr(65 + topic % 26)}{chr(65 + topic // 26)}"], published=f"{day.isoformat()}T12:00:00Z")

    conn = connect(path)
    t = time.perf_counter()
    import_records(conn, recs(), bulk=True)
    print(f"imported {n:,} papers in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    update_index(conn, semantic=False)
    print(f"lexical indexes in {time.perf_counter() - t:.0f} s")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=1_000_000)
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()

    from paperwire import recommend as rec
    from paperwire.index import vectors
    from paperwire.recommend import engine
    from paperwire.store import library as lib_store
    from paperwire.store import search as search_store
    from paperwire.store.db import connect, transaction
    from paperwire.store.meta import database_file

    folder = CACHE / "recommend_speed"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"store-{args.papers}.db"
    if not path.exists():
        build_store(path, args.papers)
    conn = connect(path)
    with transaction(conn):
        search_store.set_state(conn, "model", MODEL)
    rowids = np.array(conn.execute("SELECT id FROM papers ORDER BY id").fetchall(), np.int64).reshape(-1)  # bench-only read
    t = time.perf_counter()
    idx = vectors.VectorIndex(MODEL, 384, kind="exact")
    vecs = synth(base_vectors(), len(rowids), seed=11)
    idx.add(rowids, vecs)
    del vecs
    idx.rev, idx.seq, idx.paper_count, idx.max_rowid = vectors._store_state(conn, MODEL)
    vectors._SHARED[(database_file(conn), MODEL, "auto", False)] = idx
    print(f"vector index: {len(idx):,} vectors in {time.perf_counter() - t:.0f} s, RSS {rss_mb():.0f} MB")

    # A web user with --signals saved papers in the month window.
    from web_support import make_client, signup

    with make_client(path) as client:
        name = f"reader{int(time.time())}"
        signup(client, name)
        uid = conn.execute("SELECT id FROM users WHERE username=?", (name,)).fetchone()[0]
        since, until = engine.window_bounds(conn, "month")
        window = engine.sql.window_rowids(conn, since, until)
        chosen = random.Random(2).sample(window, args.signals)
        with transaction(conn):
            lib_store.insert_items(conn, uid, chosen, "bench")
            lib_store.bump_user_rev(conn, uid)
        rec.follow(conn, uid, "category", "cs.TDA")
        print(f"month window {since}..{until}: {len(window):,} papers; reader {name} with {args.signals} saves")

        cold = []
        for _ in range(5):
            engine.clear_cache()  # models and shared windows: the first reader after an import
            t = time.perf_counter()
            rec.recommend(conn, uid, window="month", limit=30)
            cold.append(1000 * (time.perf_counter() - t))
        train = []
        for _ in range(args.runs):
            engine.clear_cache(windows=False)
            t = time.perf_counter()
            res = rec.recommend(conn, uid, window="month", limit=30)
            train.append(1000 * (time.perf_counter() - t))
        assert res.info["mode"] == "model" and len(res.picks) == 30
        warm = []
        for _ in range(args.runs):
            t = time.perf_counter()
            rec.recommend(conn, uid, window="month", limit=30)
            warm.append(1000 * (time.perf_counter() - t))
        page = []
        r = client.get("/for-you?window=month")
        assert r.status_code == 200 and "Why this?" in r.text, r.status_code
        for _ in range(args.runs):
            t = time.perf_counter()
            r = client.get("/for-you?window=month")
            page.append(1000 * (time.perf_counter() - t))
            assert r.status_code == 200
    print(f"\n# recommend_speed  {now()}  {machine()}")
    print(f"{args.papers:,} papers, month window {len(window):,} candidates, {args.signals} signals, {args.runs} runs\n")
    print("| what | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for label, xs in (("first request after an import (window vectors gathered, then train + score)", cold),
                      ("train + score (reader's model cache emptied each run)", train), ("score with the cached model", warm),
                      ("GET /for-you?window=month, warm (TestClient, signed in)", page)):
        print(f"| {label} | {statistics.median(xs):.1f} | {pct(xs, 0.99):.1f} | {max(xs):.1f} |")


if __name__ == "__main__":
    main()
