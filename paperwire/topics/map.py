"""The 2-D topic map: a UMAP layout of the stored paper embeddings, clustered at two zoom levels.

How a build goes (:func:`build_map`):

1. Pick the embedding model with the most stored vectors (or the one asked for).
2. Fit UMAP (cosine) on at most ``max_fit`` papers, sampled evenly. UMAP's cost grows
   faster than linearly and its model is large, so a 1M-paper store fits a sample.
3. Every other paper, and later every new paper (:func:`place_new`), is placed from its
   nearest *fitted* neighbours: the similarity-weighted mean of their 2-D positions. That
   needs only the fitted sample's vectors and positions (a cache file beside the DB,
   rebuilt from the store when missing), never a refit, and it is deterministic.
4. Fine clusters: k-means on the 2-D layout (regions you can see); coarse clusters:
   k-means over the fine centroids, so each fine cluster nests in one coarse cluster.
5. Labels: c-TF-IDF over titles + abstracts (:mod:`paperwire.topics.labels`).

umap-learn and scikit-learn are the ``map`` extra: importing paperwire never needs them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Callable

import numpy as np

from paperwire.store import embeddings as store_emb
from paperwire.store import topics as sql
from paperwire.store.meta import database_file

log = logging.getLogger(__name__)

MIN_PAPERS = 50  # below this a map says nothing: the pages show an empty state instead
MAX_FIT = 20000  # papers UMAP is fitted on; the rest are placed from their fitted neighbours
NEIGHBOURS = 10  # fitted neighbours averaged to place a paper
PIP_HINT = "pip install 'paperwire[map]'  (umap-learn, scikit-learn)"


class MapUnavailable(RuntimeError):
    """The map extra is not installed, or the store cannot make a map (message for people)."""


class EmptyMap(MapUnavailable):
    """Too few papers with embeddings for a map."""


def _require():
    try:
        import sklearn  # noqa: F401
        import umap  # noqa: F401
    except ImportError as exc:
        raise MapUnavailable(f"the topic map needs umap-learn and scikit-learn ({exc}): {PIP_HINT}") from exc


def choose_model(conn: sqlite3.Connection, model: str | None = None) -> str | None:
    """The embedding model to map: ``model`` if it has vectors, else the one with the most."""
    models = store_emb.embedding_models(conn)
    if model:
        return model if any(m["model"] == model and m["count"] for m in models) else None
    models = [m for m in models if m["count"]]
    return max(models, key=lambda m: m["count"])["model"] if models else None


def cache_path(conn: sqlite3.Connection) -> Path | None:
    """``<db>.topicmap.npz`` beside the database: the fitted sample (rebuildable from the store)."""
    path = database_file(conn)
    return Path(path + ".topicmap.npz") if path else None


# ------------------------------------------------------------------ numeric core

def umap_layout(vectors: np.ndarray, *, seed: int | None = 0, n_neighbors: int = 15) -> np.ndarray:
    """Fit UMAP (cosine) on ``vectors``; returns (n, 2) coordinates scaled into [0, 1]."""
    _require()
    import umap

    n = len(vectors)
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(n_neighbors, n - 1)), metric="cosine",
                        min_dist=0.05, random_state=seed, low_memory=True, verbose=False,
                        # a fixed seed forces one thread; without one UMAP uses every core
                        n_jobs=1 if seed is not None else -1)
    xy = reducer.fit_transform(np.asarray(vectors, dtype=np.float32))
    return scale_unit(xy)


def scale_unit(xy: np.ndarray) -> np.ndarray:
    """Scale coordinates into [0, 1] keeping the aspect ratio (robust to a few far outliers)."""
    xy = np.asarray(xy, dtype=np.float64)
    lo = np.percentile(xy, 0.5, axis=0)
    hi = np.percentile(xy, 99.5, axis=0)
    span = float(max((hi - lo).max(), 1e-9))
    centre = (lo + hi) / 2
    out = (xy - centre) / (span * 1.04) + 0.5
    return np.clip(out, 0.0, 1.0)


EXACT_BUDGET = 2e8  # queries x fitted vectors above which HNSW (usearch, the ann extra) finds the neighbours


def _neighbours_exact(fit_vectors, vectors, k, chunk=2048):
    for i in range(0, len(vectors), chunk):
        sims = vectors[i:i + chunk] @ fit_vectors.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        yield i, idx, np.take_along_axis(sims, idx, axis=1)


def _neighbours_hnsw(fit_vectors, vectors, k, chunk=50000):
    from paperwire.index.vectors import usearch_index_class

    index = usearch_index_class()(ndim=fit_vectors.shape[1], metric="cos", dtype="f16", connectivity=16,
                                  expansion_add=128, expansion_search=64)
    index.add(np.arange(len(fit_vectors), dtype=np.uint64), fit_vectors)
    for i in range(0, len(vectors), chunk):
        m = index.search(np.ascontiguousarray(vectors[i:i + chunk]), k)
        keys = np.asarray(m.keys, dtype=np.int64).reshape(-1, k)
        sims = 1.0 - np.asarray(m.distances, dtype=np.float64).reshape(-1, k)
        missing = keys < 0  # fewer than k found (tiny sample): reuse the best one
        if missing.any():
            keys = np.where(missing, keys[:, :1], keys)
            sims = np.where(missing, sims[:, :1], sims)
        yield i, keys, sims


def place(fit_vectors: np.ndarray, fit_xy: np.ndarray, vectors: np.ndarray, *, k: int = NEIGHBOURS,
          exact: bool | None = None) -> np.ndarray:
    """Positions for ``vectors`` from their ``k`` most similar fitted vectors (cosine).

    Weights are similarity**8, so the nearest neighbours dominate and a paper between two
    regions is not pulled into the empty space between them. Small jobs (a day's papers)
    compare exactly; placing most of a 1M corpus uses an HNSW over the fitted sample when
    usearch is installed (``exact=None`` decides by size).
    """
    fit_vectors = np.asarray(fit_vectors, dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    k = max(1, min(k, len(fit_vectors)))
    if exact is None:
        exact = len(vectors) * len(fit_vectors) <= EXACT_BUDGET or not _has_usearch()
    found = _neighbours_exact(fit_vectors, vectors, k) if exact else _neighbours_hnsw(fit_vectors, vectors, k)
    out = np.empty((len(vectors), 2), dtype=np.float64)
    for i, idx, top in found:
        w = np.clip(np.asarray(top, dtype=np.float64), 1e-6, None) ** 8
        w /= w.sum(axis=1, keepdims=True)
        out[i:i + len(idx)] = np.einsum("nk,nkd->nd", w, fit_xy[idx])
    return out


def _has_usearch() -> bool:
    from paperwire.index.vectors import ann_available

    return ann_available()


def cluster_counts(n: int) -> tuple[int, int]:
    """(fine, coarse) cluster counts for ``n`` papers: about sqrt(n)/2 fine, sqrt of that coarse."""
    fine = int(np.clip(round(np.sqrt(n) / 2), 4, 200))
    coarse = int(np.clip(round(np.sqrt(fine) * 1.5), 3, 24))
    return fine, min(coarse, fine)


def cluster_layout(xy: np.ndarray, *, seed: int = 0, fine: int | None = None, coarse: int | None = None):
    """k-means on the 2-D layout: ``(fine label per point, fine centroids, coarse label per fine)``."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = len(xy)
    f_auto, c_auto = cluster_counts(n)
    fine, coarse = fine or f_auto, coarse or c_auto
    fine = min(fine, n)
    if n > 50000:  # full k-means over 1M points is minutes; mini-batches are seconds
        km = MiniBatchKMeans(n_clusters=fine, random_state=seed, batch_size=4096, n_init=3).fit(xy)
    else:
        km = KMeans(n_clusters=fine, random_state=seed, n_init=3).fit(xy)
    labels = km.labels_.astype(np.int64)
    centres = km.cluster_centers_
    sizes = np.bincount(labels, minlength=fine).astype(np.float64)
    coarse = min(coarse, fine)
    ckm = KMeans(n_clusters=coarse, random_state=seed, n_init=5).fit(centres, sample_weight=np.maximum(sizes, 1e-3))
    return labels, centres, ckm.labels_.astype(np.int64)


def nearest_centre(xy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for each 2-D point."""
    d = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1)


# ------------------------------------------------------------------ building

def _sample(rowids: np.ndarray, max_fit: int, seed: int) -> np.ndarray:
    if len(rowids) <= max_fit:
        return np.arange(len(rowids))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(rowids), size=max_fit, replace=False))


def build_map(conn: sqlite3.Connection, *, model: str | None = None, max_fit: int = MAX_FIT, seed: int = 0,
              progress: Callable[[str], None] | None = None, label_sample: int = 100000) -> dict:
    """(Re)build the whole map from the stored embeddings; returns a summary dict.

    Raises :class:`EmptyMap` when fewer than :data:`MIN_PAPERS` papers have vectors, and
    :class:`MapUnavailable` when the ``map`` extra is missing. The old map stays until the
    new one is written (one transaction).
    """
    from paperwire.topics.labels import label_clusters

    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    chosen = choose_model(conn, model)
    if chosen is None:
        raise EmptyMap("no paper has an embedding yet: run `paperwire index` first")
    mark = sql.placement_mark(conn, chosen)  # before the vectors: later papers are place_new's
    rowids, vectors = store_emb.paper_vectors(conn, chosen)
    if len(rowids) < MIN_PAPERS:
        raise EmptyMap(f"only {len(rowids)} papers have embeddings; a map needs at least {MIN_PAPERS}")
    _require()
    timings = {}
    pick = _sample(rowids, max_fit, seed)
    fit_vecs = vectors[pick]
    say(f"fitting UMAP on {len(pick)} of {len(rowids)} papers ({chosen})")
    t = time.perf_counter()
    fit_xy = umap_layout(fit_vecs, seed=seed)
    timings["fit_s"] = round(time.perf_counter() - t, 2)
    xy = np.empty((len(rowids), 2), dtype=np.float64)
    xy[pick] = fit_xy
    fitted = np.zeros(len(rowids), dtype=bool)
    fitted[pick] = True
    rest = np.flatnonzero(~fitted)
    t = time.perf_counter()
    if len(rest):
        say(f"placing {len(rest)} more papers from their fitted neighbours")
        xy[rest] = place(fit_vecs, fit_xy, vectors[rest])
    timings["place_s"] = round(time.perf_counter() - t, 2)
    del vectors
    t = time.perf_counter()
    fine, centres, parent = cluster_layout(xy, seed=seed)
    coarse = parent[fine]
    timings["cluster_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    say("labelling clusters (c-TF-IDF)")
    clusters = label_clusters(conn, rowids, xy, fine, coarse, parent, sample=label_sample, seed=seed)
    timings["label_s"] = round(time.perf_counter() - t, 2)
    meta = {"model": chosen, "method": "umap", "fitted": int(len(pick)), "points": int(len(rowids)),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": seed,
            "fine_clusters": int(len(centres)), "coarse_clusters": int(parent.max() + 1), "placed_mark": mark,
            "centres": np.round(centres, 6).tolist()}
    t = time.perf_counter()
    sql.replace_map(conn, zip(rowids.tolist(), xy[:, 0].tolist(), xy[:, 1].tolist(), coarse.tolist(),
                              fine.tolist(), fitted.astype(int).tolist()), clusters, meta)
    _save_cache(conn, rowids[pick], fit_vecs, fit_xy, meta["built_at"])
    timings["write_s"] = round(time.perf_counter() - t, 2)
    timings["total_s"] = round(time.perf_counter() - t0, 2)
    sql_meta = {k: v for k, v in meta.items() if k != "centres"}
    return {**sql_meta, **timings}


def _save_cache(conn, rowids, vecs, xy, built_at: str) -> None:
    path = cache_path(conn)
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(tmp, rowids=np.asarray(rowids, np.int64), vectors=np.asarray(vecs, np.float16),
                 xy=np.asarray(xy, np.float64), built_at=np.array(built_at))
        os.replace(tmp, path)  # atomic: a reader sees the old cache or the new one
    except OSError as exc:  # a cache is an optimisation; the store has everything
        log.warning("topic map cache not written (%s): %s", path, exc)


def _vectors(conn: sqlite3.Connection, model: str, rowids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The visible papers' ``model`` vectors among ``rowids``, in rowid order."""
    chunks = list(store_emb.iter_paper_vectors(conn, model, rowids=rowids))
    if not chunks:
        return np.zeros(0, np.int64), np.zeros((0, store_emb.model_dim(conn, model) or 0), np.float32)
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


def _fitted_sample(conn: sqlite3.Connection, model: str, built_at: str) -> tuple[np.ndarray, np.ndarray]:
    """The fitted sample's (vectors, xy): from the cache when it matches this build, else the store."""
    path = cache_path(conn)
    if path is not None and path.exists():
        try:
            with np.load(path) as z:
                if str(z["built_at"]) == built_at:
                    return z["vectors"].astype(np.float32), z["xy"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("topic map cache %s unreadable, rebuilding from the store: %s", path, exc)
    rows = sql.fitted_points(conn)
    ids = np.array([r[0] for r in rows], np.int64)
    pos = {int(r[0]): (r[1], r[2]) for r in rows}
    got_ids, vecs = _vectors(conn, model, ids.tolist())
    xy = np.array([pos[int(i)] for i in got_ids], np.float64).reshape(-1, 2)
    _save_cache(conn, got_ids, vecs, xy, built_at)
    return vecs, xy


def place_new(conn: sqlite3.Connection, *, limit: int | None = None, batch: int = 5000) -> dict:
    """Put papers that got a vector since the last build on the map, without refitting.

    Returns ``{"placed": n, "seconds": s}``; ``{"placed": 0, "reason": ...}`` when there is no map.
    """
    t0 = time.perf_counter()
    meta = sql.map_meta(conn)
    if not meta.get("built_at") or not sql.point_count(conn):
        return {"placed": 0, "reason": "no map built yet: run `paperwire map build`"}
    model = meta["model"]
    mark = sql.placement_mark(conn, model)  # read first: whatever comes later is the next run's
    todo = sql.unplaced_papers(conn, model, limit=limit, since=meta.get("placed_mark"))
    done_to_mark = limit is None or len(todo) < limit  # a cut batch leaves the rest for next time
    if not todo:
        if done_to_mark:
            sql.set_placement_mark(conn, mark)
        return {"placed": 0, "seconds": round(time.perf_counter() - t0, 3)}
    fit_vecs, fit_xy = _fitted_sample(conn, model, meta["built_at"])
    centres = np.asarray(meta["centres"], np.float64)
    parent = {c["id"]: c["parent"] for c in sql.clusters(conn, "fine")}
    placed = 0
    for i in range(0, len(todo), batch):
        ids, vecs = _vectors(conn, model, todo[i:i + batch])
        if not len(ids):
            continue
        xy = place(fit_vecs, fit_xy, vecs)
        fine = nearest_centre(xy, centres)
        placed += sql.add_points(conn, ((int(r), x, y, int(parent.get(int(f), 0)), int(f))
                                        for r, (x, y), f in zip(ids, xy, fine)))
    if done_to_mark:
        sql.set_placement_mark(conn, mark)
    return {"placed": placed, "seconds": round(time.perf_counter() - t0, 3)}


def map_status(conn: sqlite3.Connection, *, count_unplaced: bool = True) -> dict:
    """What the map holds and whether it is behind the store (for ``paperwire map status``).

    ``count_unplaced=False`` skips the one query that scans every paper (the /map page)."""
    meta = {k: v for k, v in sql.map_meta(conn).items() if k != "centres"}
    model = meta.get("model") or choose_model(conn)
    with_vectors = store_emb.embedding_count(conn, model) if model else 0
    status = {"built": bool(meta.get("built_at")), "points": sql.point_count(conn),
              "fitted": sql.fitted_count(conn), "model": model, "papers_with_vectors": with_vectors,
              "unplaced": (len(sql.unplaced_papers(conn, model)) if (count_unplaced and model and meta.get("built_at"))
                           else None),
              "min_papers": MIN_PAPERS, **{k: v for k, v in meta.items() if k not in ("model",)}}
    status["empty_reason"] = empty_reason(conn, status)
    return status


def empty_reason(conn: sqlite3.Connection, status: dict | None = None) -> str | None:
    """Why there is no map to show (a sentence for people), or None when there is one."""
    points = status["points"] if status else sql.point_count(conn)
    if points >= MIN_PAPERS:
        return None
    model = (status or {}).get("model") or choose_model(conn)
    n = store_emb.embedding_count(conn, model) if model else 0
    if n == 0:
        return "No paper has an embedding yet, so there is nothing to map. Run `paperwire index`, then `paperwire map build`."
    if n < MIN_PAPERS:
        return f"Only {n} papers have embeddings; the map needs at least {MIN_PAPERS}. It appears once the store grows."
    return "The topic map has not been built yet. Run `paperwire map build` (the worker rebuilds it weekly)."
