"""Retrieval evaluation on BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

The corpus is imported into a scratch database (BEIR ids stay the paper ids, so qrels
match hits), indexed with :func:`update_index`, and every judged query is run through
the same :func:`search` the site uses. Metrics: nDCG@10 (graded gains, as BEIR's
pytrec_eval) and Recall@100.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from pathlib import Path
from typing import Callable

from paperwire.index.query import QueryError


def ndcg_at_k(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** rels.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict:
    """Mean nDCG@10 and Recall@100 over the judged queries (missing runs count as 0)."""
    n = len(qrels)
    if n == 0:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "queries": 0}
    nd = sum(ndcg_at_k(run.get(q, []), rels, 10) for q, rels in qrels.items()) / n
    rc = sum(recall_at_k(run.get(q, []), rels, 100) for q, rels in qrels.items()) / n
    return {"ndcg@10": round(nd, 4), "recall@100": round(rc, 4), "queries": n}


def default_scratch(folder: Path) -> Path:
    """A per-corpus scratch database in the user cache dir: reruns reuse the import and
    the embedding cache."""
    import platformdirs

    folder = Path(folder).resolve()
    tag = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    return Path(platformdirs.user_cache_dir("paperwire", appauthor=False)) / "eval" / f"{folder.name}-{tag}.db"


def prepare(folder: Path, db_path: Path, *, embedder=None, semantic: bool = True, progress: bool = False) -> sqlite3.Connection:
    """Open the scratch db, import the corpus once, bring the index up to date."""
    from paperwire.index.build import update_index
    from paperwire.sources import import_files
    from paperwire.sources.beir import corpus_path
    from paperwire.store.db import connect
    from paperwire.store.meta import get_meta, set_meta

    corpus = corpus_path(Path(folder))
    conn = connect(db_path)
    stamp = f"{corpus.resolve()}:{corpus.stat().st_size}:{int(corpus.stat().st_mtime)}"
    if get_meta(conn, "eval_corpus") != stamp:
        import_files(conn, [corpus], fmt="beir", progress=progress)
        set_meta(conn, "eval_corpus", stamp)
    update_index(conn, embedder=embedder, progress=progress, semantic=semantic)
    return conn


def run_queries(conn, queries: dict[str, str], *, mode: str, k: int = 100, embedder=None, on_query: Callable | None = None, **search_kw) -> dict[str, list[str]]:
    """``{query_id: [paper_id, ...]}`` best first. Queries the box would reject get no hits."""
    from paperwire.index.search import search

    run = {}
    for qid, text in queries.items():
        try:
            res = search(conn, text[:250], mode=mode, limit=k, embedder=embedder, with_snippets=False, **search_kw)
            run[qid] = [h.paper_id for h in res.hits]
        except QueryError:
            run[qid] = []
        if on_query:
            on_query()
    return run


def evaluate_beir(
    folder: str | Path,
    *,
    split: str = "test",
    mode: str = "hybrid",
    db_path: str | Path | None = None,
    embedder=None,
    progress: bool = False,
    **search_kw,
) -> dict:
    """Evaluate search on a BEIR folder; returns metrics, mode used and timings."""
    from paperwire.index.search import search
    from paperwire.sources.beir import load_qrels, load_queries

    folder = Path(folder)
    for need in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / need).exists():
            raise FileNotFoundError(f"{folder / need}: missing (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/{split}.tsv)")
    db_path = Path(db_path) if db_path else default_scratch(folder)
    t0 = time.perf_counter()
    conn = prepare(folder, db_path, embedder=embedder, semantic=mode != "lexical", progress=progress)
    t_index = time.perf_counter() - t0
    qrels = load_qrels(folder, split)
    all_q = load_queries(folder)
    queries = {q: all_q[q] for q in qrels if q in all_q}
    notes: list[str] = []
    used = mode
    if queries:
        probe = search(conn, next(iter(queries.values()))[:250], mode=mode, limit=1, embedder=embedder)
        used, notes = probe.mode, probe.notes
    t1 = time.perf_counter()
    run = run_queries(conn, queries, mode=mode, embedder=embedder, **search_kw)
    t_q = time.perf_counter() - t1
    out = score_run(run, {q: r for q, r in qrels.items() if q in queries})
    out.update({
        "split": split, "mode": used, "requested_mode": mode, "notes": notes, "db": str(db_path),
        "index_seconds": round(t_index, 2), "query_ms_mean": round(1000 * t_q / max(len(queries), 1), 2),
    })
    conn.close()
    return out
