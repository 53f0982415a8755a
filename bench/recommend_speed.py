"""For-you speed at scale: train + score, and the /for-you page, for a reader with 1,000 signals.

    cd bench && PYTHONPATH=../tests python recommend_speed.py [--papers 1000000] [--signals 1000] [--runs 60]
        [--baseline DIR] [--gc-freeze] [--stages N]

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

``--baseline DIR`` runs an A/B in the same process, interleaved run by run (the box is shared
and noisy, so only same-run ratios mean much): DIR holds older ``engine.py``, ``model.py`` and
``lexical.py`` of ``paperwire/recommend/`` (e.g. ``git show REV:paperwire/recommend/engine.py``),
loaded as separate modules and swapped in for ``paperwire.recommend.engine``.

``--stages N`` then runs N more train + score runs of the current engine with a timer around
each stage (signals, profile words, LR fit, profile query, first stage, kNN, ...).
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


def load_baseline(folder: Path):
    """The older engine in ``folder`` wired to its own model and lexical modules."""
    import importlib.util
    import sys

    mods = {}
    for name in ("model", "lexical", "engine"):
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", folder / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        if name == "engine":  # its "from paperwire.recommend import model as mdl" must get the old one
            import paperwire.recommend as pkg

            saved = pkg.model, sys.modules["paperwire.recommend.model"], sys.modules["paperwire.recommend.lexical"]
            pkg.model = sys.modules["paperwire.recommend.model"] = mods["model"]
            sys.modules["paperwire.recommend.lexical"] = mods["lexical"]
            try:
                spec.loader.exec_module(mod)
            finally:
                pkg.model, sys.modules["paperwire.recommend.model"], sys.modules["paperwire.recommend.lexical"] = saved
        else:
            spec.loader.exec_module(mod)
        mods[name] = mod
    return mods["engine"]


STAGES = [  # (module path, attribute) timed by --stages; nested ones are also inside their callers
    ("paperwire.recommend.engine", "signals"), ("paperwire.recommend.engine", "_train"),
    ("paperwire.recommend.lexical", "profile_terms"), ("paperwire.recommend.engine", "_vectors_of"),
    ("paperwire.recommend.model", "train"), ("paperwire.recommend.engine", "_lexical"),
    ("paperwire.recommend.engine", "_follow_matches"), ("paperwire.recommend.engine", "_model_picks"),
    ("paperwire.recommend.window", "Window.top_logits"), ("paperwire.recommend.model", "Linear.nearest"),
    ("paperwire.recommend.model", "blend_scores"), ("paperwire.recommend", "get_papers_by_rowid"),
]


def time_stages(conn, uid: int, runs: int) -> dict[str, list[float]]:
    """Per-stage times over ``runs`` train + score runs of the current engine: each function
    in STAGES is wrapped with a timer where its callers look it up (module globals)."""
    import importlib

    from paperwire import recommend as rec

    times: dict[str, list[float]] = {}
    undo = []

    def timed(name, fn):
        def run(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times.setdefault(name, []).append(1000 * (time.perf_counter() - t))
        return run

    for modname, attr in STAGES:
        owner = importlib.import_module(modname)
        *path, leaf = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        fn = getattr(owner, leaf, None) if owner is not None else None
        if fn is None:  # an engine without this stage
            continue
        name = f"{modname.rsplit('.', 1)[-1]}.{attr}"
        targets = [owner] + [m for m in (rec, rec.engine) if not path and getattr(m, leaf, None) is fn and m is not owner]
        for t in targets:
            setattr(t, leaf, timed(name, fn))
            undo.append((t, leaf, fn))
    total = []
    try:
        for _ in range(runs):
            rec.engine.clear_cache(windows=False)
            t = time.perf_counter()
            rec.recommend(conn, uid, window="month", limit=30)
            total.append(1000 * (time.perf_counter() - t))
    finally:
        for t, leaf, fn in reversed(undo):
            setattr(t, leaf, fn)
    return {"train + score (whole request, timers included)": total, **times}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=1_000_000)
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after setup (what a server could do after start-up): no full GC passes over it")
    ap.add_argument("--baseline", type=Path, default=None, help="folder with older engine/model/lexical .py (A/B)")
    ap.add_argument("--stages", type=int, default=0, metavar="N",
                    help="then N more train + score runs of the current engine with a timer around each stage")
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
    from paperwire.store import accounts
    from paperwire.web import security
    from web_support import csrf_from, make_client

    with make_client(path) as client:
        # One reader per cached store, made once through the account library and then signed in
        # through the real form: signing up a new one per run hits the per-address sign-up
        # limit (5 an hour) on the next runs.
        name, password = "benchreader", "correct horse battery"
        if accounts.find_user(conn, name) is None:
            with transaction(conn):
                accounts.create_user(conn, name, f"{name}@example.org", security.hash_password(password))
        form = client.get("/login")
        r = client.post("/login", data={"login": name, "password": password, "csrf_token": csrf_from(form.text),
                                        "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        uid = conn.execute("SELECT id FROM users WHERE username=?", (name,)).fetchone()[0]
        since, until = engine.window_bounds(conn, "month")
        window = engine.sql.window_rowids(conn, since, until)
        chosen = random.Random(2).sample(window, args.signals)
        with transaction(conn):
            lib_store.insert_items(conn, uid, chosen, "bench")
            lib_store.bump_user_rev(conn, uid)
        rec.follow(conn, uid, "category", "cs.TDA")
        print(f"month window {since}..{until}: {len(window):,} papers; reader {name} with {args.signals} saves")

        new_engine = rec.engine
        variants = {"new": new_engine}
        if args.baseline:
            variants = {"baseline": load_baseline(args.baseline), "new": new_engine}
        res: dict = {}
        if args.gc_freeze:
            import gc

            gc.collect()
            gc.freeze()
        for v, eng in variants.items():  # the baseline's own first request: its window cache
            rec.engine = eng
            eng.clear_cache()
            rec.recommend(conn, uid, window="month", limit=30)
        cold = {v: [] for v in variants}
        train = {v: [] for v in variants}
        warm = {v: [] for v in variants}
        page = {v: [] for v in variants}
        for _ in range(5):
            for v, eng in variants.items():
                rec.engine = eng
                eng.clear_cache()  # models and shared windows: the first reader after an import
                t = time.perf_counter()
                rec.recommend(conn, uid, window="month", limit=30)
                cold[v].append(1000 * (time.perf_counter() - t))
        for _ in range(args.runs):
            for v, eng in variants.items():  # interleaved: the box's noise hits both alike
                rec.engine = eng
                eng.clear_cache(windows=False)
                t = time.perf_counter()
                res[v] = rec.recommend(conn, uid, window="month", limit=30)
                train[v].append(1000 * (time.perf_counter() - t))
        for v in variants:
            assert res[v].info["mode"] == "model" and len(res[v].picks) == 30
        if args.baseline:
            same = len({p["id"] for p in res["baseline"].picks} & {p["id"] for p in res["new"].picks})
            print(f"top-30 overlap baseline vs new: {same}/30")
        for _ in range(args.runs):
            for v, eng in variants.items():
                rec.engine = eng
                t = time.perf_counter()
                rec.recommend(conn, uid, window="month", limit=30)
                warm[v].append(1000 * (time.perf_counter() - t))
        for v, eng in variants.items():
            rec.engine = eng
            r = client.get("/for-you?window=month")
            assert r.status_code == 200 and "Why this?" in r.text, r.status_code
        for _ in range(args.runs):
            for v, eng in variants.items():
                rec.engine = eng
                t = time.perf_counter()
                r = client.get("/for-you?window=month")
                page[v].append(1000 * (time.perf_counter() - t))
                assert r.status_code == 200
        rec.engine = new_engine
        stages = time_stages(conn, uid, args.stages) if args.stages else {}
    print(f"\n# recommend_speed  {now()}  {machine()}")
    print(f"{args.papers:,} papers{', gc.freeze() after setup' if args.gc_freeze else ''}, month window {len(window):,} candidates, {args.signals} signals, {args.runs} runs\n")
    cols = list(variants)
    head = " | ".join(f"{v} p50 ms | {v} p99 ms | {v} max ms" for v in cols)
    ratio = " | new/baseline p50 | new/baseline p99" if args.baseline else ""
    print(f"| what | {head}{ratio} |")
    print("|---|" + "---|" * (3 * len(cols) + (2 if args.baseline else 0)))
    for label, xs in (("first request after an import (window vectors gathered, then train + score)", cold),
                      ("train + score (reader's model cache emptied each run)", train), ("score with the cached model", warm),
                      ("GET /for-you?window=month, warm (TestClient, signed in)", page)):
        cells = " | ".join(f"{statistics.median(xs[v]):.1f} | {pct(xs[v], 0.99):.1f} | {max(xs[v]):.1f}" for v in cols)
        if args.baseline:
            a, b = xs["baseline"], xs["new"]
            cells += f" | {statistics.median(b) / statistics.median(a):.2f} | {pct(b, 0.99) / pct(a, 0.99):.2f}"
        print(f"| {label} | {cells} |")
    for v in cols:  # the tail: a few stalls (a run waiting for a core) or many slow runs?
        top = sorted(train[v], reverse=True)
        print(f"\n{v}: train + score runs over 50 ms: {sum(x > 50 for x in top)} of {len(top)}; slowest five: "
              + ", ".join(f"{x:.1f}" for x in top[:5]) + f"; p90 {pct(top, 0.90):.1f}, p95 {pct(top, 0.95):.1f}")
    print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if stages:
        print(f"\nstages of the current engine, {args.stages} train + score runs (ms; a stage's time includes those nested in it):\n")
        print("| stage | calls per run | p50 ms | mean ms | max ms |")
        print("|---|---|---|---|---|")
        for name, xs in stages.items():
            print(f"| {name} | {len(xs) / args.stages:.0f} | {statistics.median(xs):.2f} | {statistics.mean(xs):.2f} | {max(xs):.1f} |")


if __name__ == "__main__":
    main()
