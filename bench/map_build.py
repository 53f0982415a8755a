"""Topic map at scale: build time and peak RSS, placing 1,000 new papers, map API latency.

    python bench/map_build.py --n 100000 [--max-fit 20000] [--days 84] [--dir /tmp/pw-map-bench]

Synthetic store: N papers in 100 topics (each topic owns 12 made-up words, so labels can be
checked), MiniLM-sized 384-d vectors = topic centre + noise, L2-normalised, feed dates over
12 weeks (``--days``). Each phase runs in its own process so peak RSS (ru_maxrss) is that phase's own:

1. ``make``  : import the papers (bulk) and store the vectors (not timed as part of the map);
2. ``build`` : ``paperwire.topics.map.build_map`` (UMAP on ``max_fit`` sampled papers, the
   rest placed from their fitted neighbours, k-means at two levels, c-TF-IDF labels, write);
3. ``place`` : 1,000 new papers imported + embedded, then ``place_new`` (no refit);
4. ``api``   : GET /api/v1/map (first page of 5,000), /api/v1/map/points (100,000 per page,
   all pages) and /trends through the real app (page cache off: every request computes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

DIM = 384
TOPICS = 100


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _letters(k: int) -> str:
    out = ""
    while True:
        out = chr(97 + k % 26) + out
        k //= 26
        if not k:
            return out


def _word(t: int, j: int) -> str:
    """Topic ``t``'s ``j``-th own word, letters only ("tpbxqc"): the labeller skips digits."""
    return f"tp{_letters(t)}q{_letters(j)}"


def _records(start: int, n: int, seed: int, days: int = 84):
    from paperwire.model import PaperRecord

    rng = np.random.default_rng(seed)
    topics = rng.integers(0, TOPICS, n)
    end = datetime(2026, 11, 18, tzinfo=timezone.utc)
    for i, t in zip(range(start, start + n), topics):
        own = [_word(int(t), j) for j in range(12)]
        words = rng.choice(own, 30).tolist() + rng.choice([f"common{_letters(j)}" for j in range(50)], 20).tolist()
        day = end - timedelta(days=int(rng.integers(0, days)))
        yield PaperRecord(title=" ".join(words[:6]), abstract=" ".join(words), source="bench",
                          external_id=f"syn-{i}", published=day.strftime("%Y-%m-%dT%H:%M:%SZ")), int(t)


def _vectors(topics: np.ndarray, seed: int) -> np.ndarray:
    centres = np.random.default_rng(12345).standard_normal((TOPICS, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    v = centres[topics] + 1.1 * rng.standard_normal((len(topics), DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(conn, start: int, n: int, seed: int, bulk: bool, days: int = 84) -> float:
    from paperwire.ingest import import_records
    from paperwire.store import embeddings as emb

    pairs = list(_records(start, n, seed, days))
    t0 = time.perf_counter()
    import_records(conn, (r for r, _ in pairs), bulk=bulk)
    ids = [f"syn-{i}" for i in range(start, start + n)]
    hashes = {}
    for k in range(0, n, 500):
        part = ids[k:k + 500]
        marks = ",".join("?" * len(part))
        hashes.update(conn.execute(f"SELECT paper_id, content_hash FROM papers WHERE paper_id IN ({marks})", part))
    vecs = _vectors(np.array([t for _, t in pairs]), seed)
    for k in range(0, n, 20000):
        emb.put_embeddings(conn, "synthetic-384", [hashes[p] for p in ids[k:k + 20000]], vecs[k:k + 20000])
    return time.perf_counter() - t0


def phase_make(args) -> dict:
    from paperwire.store.db import connect

    conn = connect(args.db)
    return {"phase": "make", "n": args.n, "days": args.days, "seconds": round(_add(conn, 0, args.n, 1, bulk=True, days=args.days), 1),
            "rss_mib": round(_rss_mib())}


def phase_build(args) -> dict:
    from paperwire.store.db import connect
    from paperwire.topics import map as topic_map

    conn = connect(args.db)
    # numba compiles UMAP's kernels once per process (part of it is cached on disk): time that
    # on a tiny fit first, so fit_s below is the fit itself.
    t0 = time.perf_counter()
    topic_map.umap_layout(np.random.default_rng(0).standard_normal((300, DIM)).astype(np.float32))
    jit_s = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    summary = topic_map.build_map(conn, max_fit=args.max_fit)
    out = {"phase": "build", "seconds": round(time.perf_counter() - t0, 1), "jit_warmup_s": jit_s,
           "rss_mib": round(_rss_mib()), **summary}
    from paperwire.store import topics as sql

    labels = [c["label"] for c in sql.clusters(conn, "coarse")]
    # A coarse label should be words of the topics it holds, never the shared "common..." words.
    pure = sum(bool(lab.split()) and all(w.startswith("tp") for w in lab.replace(" · ", " ").split())
               for lab in labels)
    out["coarse_labels_one_topic"] = f"{pure}/{len(labels)}"
    out["label_examples"] = labels[:3]
    return out


def phase_place(args) -> dict:
    from paperwire.store.db import connect
    from paperwire.topics import map as topic_map

    conn = connect(args.db)
    add_s = _add(conn, args.n, 1000, 2, bulk=False, days=min(args.days, 7))
    t0 = time.perf_counter()
    out = topic_map.place_new(conn)
    return {"phase": "place", "new": 1000, "import_and_embed_s": round(add_s, 2),
            "place_s": round(time.perf_counter() - t0, 3), "placed": out["placed"], "rss_mib": round(_rss_mib())}


def phase_api(args) -> dict:
    from fastapi.testclient import TestClient

    from paperwire.settings import Settings
    from paperwire.web.app import create_app

    client = TestClient(create_app(Settings(db_path=Path(args.db), secret_key="bench", embedder="none"), cache=False))
    out = {"phase": "api"}

    def timed(url: str, reps: int = 5) -> tuple[float, int]:
        times, size = [], 0
        for _ in range(reps):
            t = time.perf_counter()
            r = client.get(url)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, (url, r.status_code, r.text[:200])
            size = len(r.content)
        return round(float(np.median(times)) * 1000, 1), size

    out["map_first_page_ms"], out["map_first_page_bytes"] = timed("/api/v1/map?limit=5000")
    out["map_middle_page_ms"], _ = timed(f"/api/v1/map?limit=5000&cursor={args.n // 2}")
    t = time.perf_counter()
    cursor, pages, total = None, 0, 0
    while True:
        r = client.get("/api/v1/map/points" + (f"?cursor={cursor}" if cursor else "")).json()
        pages += 1
        total += len(r["ids"])
        cursor = r["next_cursor"]
        if not cursor:
            break
    out["points_all_pages_s"] = round(time.perf_counter() - t, 2)
    out["points_pages"], out["points_total"] = pages, total
    out["trends_page_ms"], _ = timed("/trends", reps=3)
    out["rss_mib"] = round(_rss_mib())
    return out


PHASES = {"make": phase_make, "build": phase_build, "place": phase_place, "api": phase_api}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--max-fit", type=int, default=20000)
    ap.add_argument("--dir", default="/tmp/pw-map-bench")
    ap.add_argument("--days", type=int, default=84,
                    help="feed dates spread over this many days (84: every paper in the trends window; "
                         "arXiv's ~1,100 a day would be N/1100)")
    ap.add_argument("--phase", choices=sorted(PHASES), help="(internal) run one phase in this process")
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"map-{args.n}.db"
    for p in folder.glob(db.name + "*"):
        p.unlink()
    results = []
    for phase in ("make", "build", "place", "api"):
        cmd = [sys.executable, __file__, "--phase", phase, "--db", str(db), "--n", str(args.n),
               "--max-fit", str(args.max_fit), "--days", str(args.days)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(json.dumps(res), flush=True)
        results.append(res)


if __name__ == "__main__":
    main()
