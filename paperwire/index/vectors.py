"""Nearest-neighbour search over paper vectors.

The durable vectors live in SQLite (:mod:`paperwire.store.embeddings`, float32 blobs keyed by
(model, content_hash)). This module holds the *rebuildable* in-memory index over them:

* ``kind="exact"``: a float32 matrix and one BLAS mat-vec per query; exact, fine up to
  some tens of thousands of papers (see BENCHMARKS.md for the timings).
* ``kind="hnsw"``: a usearch HNSW graph (extra ``ann``) with float16 vectors, saved
  next to the database as a cache (``<db>.vectors/<model>.usearch``) and caught up
  incrementally on load. Recall@10 vs exact is measured in bench/vectors_search.py.
* ``kind="auto"``: HNSW when usearch is installed and there are more than
  :data:`ANN_THRESHOLD` vectors, else exact.

Freshness: the index remembers the store revision (``papers.rev``) and the embedding write
sequence it has seen; :meth:`VectorIndex.is_stale` compares them (two one-row queries) and
:meth:`VectorIndex.refresh` applies only what changed since.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from paperwire.store import embeddings as store_emb
from paperwire.store.meta import database_file
from paperwire.store.papers import all_paper_rowids, current_rev

# Above this many vectors "auto" uses HNSW (if usearch is installed): an exact mat-vec over
# 384-d float32 costs ~0.1 ms per 1,000 vectors on 2 cores, so ~5 ms at 50k.
ANN_THRESHOLD = int(os.environ.get("PAPERWIRE_ANN_THRESHOLD", "50000"))
PIP_ANN = "pip install 'paperwire[ann]'"
# HNSW + filter: up to this many allowed rowids are scored exactly, above it the graph is
# over-fetched (bench/vectors_search.py: a 5% filter on 100k took 17 ms exactly).
HNSW_EXACT_FILTER_MAX = 2000
_CACHE_VERSION = 2  # 2: float16 storage
# HNSW vector storage. bench/vectors_search.py, recall@10 vs exact: i8 0.971 (100k) and
# 0.865 (1M, flat at any ef: int8 cannot order near-ties); f16 0.995 (100k) at 1.8x memory.
HNSW_DTYPE = os.environ.get("PAPERWIRE_HNSW_DTYPE", "f16")


def usearch_index_class():
    """usearch's ``Index`` class, imported after onnxruntime when that is installed.

    Importing onnxruntime (1.31) *after* usearch 2.26 (its numkong kernels) crashes the
    process with a segfault; the other order is fine. The web server or a search can load
    the vector index before the first query embedder, so every usearch import goes here.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    from usearch.index import Index

    return Index


def ann_available() -> bool:
    try:
        usearch_index_class()
    except ImportError:
        return False
    return True


def default_cache_dir(conn: sqlite3.Connection) -> Path | None:
    """``<db file>.vectors/`` beside the database, or None for an in-memory database."""
    path = database_file(conn)
    if not path:
        return None
    p = Path(path)
    return p.with_name(p.name + ".vectors")


def _safe(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model)


class _Exact:
    """float32 matrix with spare capacity; rows are swapped-with-last on removal."""

    def __init__(self, dim: int):
        self.dim = dim
        self.mat = np.zeros((0, dim), dtype=np.float32)
        self.ids = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.pos: dict[int, int] = {}

    def _grow(self, need: int) -> None:
        if need <= len(self.mat):
            return
        cap = max(need, int(len(self.mat) * 1.5) + 1024)
        mat = np.zeros((cap, self.dim), dtype=np.float32)
        ids = np.zeros(cap, dtype=np.int64)
        mat[: self.n] = self.mat[: self.n]
        ids[: self.n] = self.ids[: self.n]
        self.mat, self.ids = mat, ids

    def add(self, rowids: np.ndarray, vecs: np.ndarray) -> None:
        new = [i for i, r in enumerate(rowids) if int(r) not in self.pos]
        for i, r in enumerate(rowids):
            p = self.pos.get(int(r))
            if p is not None:
                self.mat[p] = vecs[i]
        if not new:
            return
        self._grow(self.n + len(new))
        sel = np.asarray(new)
        self.mat[self.n : self.n + len(new)] = vecs[sel]
        self.ids[self.n : self.n + len(new)] = rowids[sel]
        for j, r in enumerate(rowids[sel]):
            self.pos[int(r)] = self.n + j
        self.n += len(new)

    def remove(self, rowids: Iterable[int]) -> int:
        removed = 0
        for r in rowids:
            p = self.pos.pop(int(r), None)
            if p is None:
                continue
            last = self.n - 1
            if p != last:
                self.mat[p] = self.mat[last]
                moved = int(self.ids[last])
                self.ids[p] = moved
                self.pos[moved] = p
            self.n -= 1
            removed += 1
        return removed

    def get(self, rowid: int) -> np.ndarray | None:
        p = self.pos.get(int(rowid))
        return None if p is None else self.mat[p].copy()

    def search(self, q: np.ndarray, k: int, positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if positions is None:
            scores = self.mat[: self.n] @ q
            ids = self.ids[: self.n]
        else:
            scores = self.mat[positions] @ q
            ids = self.ids[positions]
        return _topk(ids, scores, k)


def _topk(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(scores)
    if n == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(n)
    order = part[np.argsort(-scores[part], kind="stable")]
    return ids[order].astype(np.int64), scores[order].astype(np.float32)


def _unit(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.maximum(norms, 1e-12)


class _Hnsw:
    """usearch HNSW over float16 vectors (``HNSW_DTYPE``), cosine metric (= dot: inputs are unit)."""

    def __init__(self, dim: int, *, index=None, dtype: str = HNSW_DTYPE, connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = 96):
        try:
            Index = usearch_index_class()
        except ImportError as exc:
            from paperwire.index.embeddings import EmbedderUnavailable

            raise EmbedderUnavailable(f"the HNSW vector index needs usearch: {PIP_ANN}") from exc
        self.dim = dim
        self.index = index if index is not None else Index(
            ndim=dim, metric="cos", dtype=dtype, connectivity=connectivity,
            expansion_add=expansion_add, expansion_search=expansion_search,
        )

    @property
    def n(self) -> int:
        return len(self.index)

    def add(self, rowids: np.ndarray, vecs: np.ndarray) -> None:
        keys = np.asarray(rowids, dtype=np.uint64)
        present = np.asarray(self.index.contains(keys), dtype=bool).reshape(-1) if len(self.index) else np.zeros(len(keys), bool)
        if present.any():
            self.index.remove(keys[present])
        self.index.add(keys, np.ascontiguousarray(vecs, dtype=np.float32))

    def remove(self, rowids: Iterable[int]) -> int:
        keys = np.asarray(list(rowids), dtype=np.uint64)
        if not len(keys) or not len(self.index):
            return 0
        present = np.asarray(self.index.contains(keys), dtype=bool).reshape(-1)
        if not present.any():
            return 0
        self.index.remove(keys[present])
        return int(present.sum())

    def contains(self, rowid: int) -> bool:
        return bool(len(self.index)) and bool(self.index.contains(int(rowid)))

    def present(self, rowids: np.ndarray) -> np.ndarray:
        """The given rowids that are in the index, in order (one usearch call)."""
        if not len(rowids) or not len(self.index):
            return rowids[:0]
        return rowids[np.asarray(self.index.contains(rowids.astype(np.uint64)), dtype=bool).reshape(-1)]

    def get(self, rowid: int) -> np.ndarray | None:
        if not self.contains(rowid):
            return None
        v = self.index.get(int(rowid), dtype=np.float32)
        return None if v is None else _unit(np.asarray(v, dtype=np.float32).reshape(1, -1))[0]

    def get_many(self, rowids: np.ndarray) -> np.ndarray:
        # int8/f16 storage keeps direction, not exact length: renormalise so dots are cosines.
        return _unit(np.asarray(self.index.get(np.asarray(rowids, dtype=np.uint64), dtype=np.float32), dtype=np.float32))

    def keys(self) -> np.ndarray:
        return np.asarray(self.index.keys, dtype=np.int64)

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.index) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        m = self.index.search(q, min(k, len(self.index)), threads=1)
        # usearch "cos" distance is 1 - cosine (the "ip" metric is unscaled for int8).
        return np.asarray(m.keys, dtype=np.int64), (1.0 - np.asarray(m.distances, dtype=np.float32))


class VectorIndex:
    """In-memory nearest-neighbour index over one model's paper vectors (keys = papers.id).

    Build with :meth:`load` (from SQLite, or the on-disk HNSW cache caught up incrementally),
    or empty via the constructor plus :meth:`add`. Thread-safe: one lock around mutation and search.
    """

    def __init__(self, model: str, dim: int, *, kind: str = "exact", include_hidden: bool = False):
        if kind not in ("exact", "hnsw"):
            raise ValueError(f"unknown vector index kind {kind!r}: use exact, hnsw or auto")
        self.model = model
        self.dim = dim
        self.kind = kind
        self.include_hidden = include_hidden
        self._impl: _Exact | _Hnsw = _Exact(dim) if kind == "exact" else _Hnsw(dim)
        self._lock = threading.RLock()
        # What of the store this index reflects (see is_stale/refresh).
        self.rev = 0
        self.seq = 0
        self.paper_count = 0
        self.max_rowid = 0
        self.cache_path: Path | None = None
        self.load_info: dict = {}

    # ---------------------------------------------------------------- building

    @classmethod
    def load(
        cls,
        conn: sqlite3.Connection,
        model: str,
        *,
        kind: str = "auto",
        cache_dir: str | Path | None = "default",
        include_hidden: bool = False,
        dim: int | None = None,
        save: bool = True,
    ) -> "VectorIndex":
        """Index every stored vector of ``model`` (hidden papers left out unless asked).

        For HNSW, a cache file in ``cache_dir`` (default ``<db>.vectors/``; None = no cache)
        is reused when it matches and caught up with :meth:`refresh`; a missing or broken
        cache is rebuilt from SQLite and saved (unless ``save=False``).
        """
        t0 = time.perf_counter()
        stored_dim = store_emb.model_dim(conn, model)
        dim = stored_dim or dim
        if dim is None:
            # Nothing stored yet for this model: an empty exact index that refresh() can fill.
            from paperwire.index.embeddings import MINILM_DIM

            dim = MINILM_DIM
        rev, seq, count, max_rowid = _store_state(conn, model)
        if kind == "auto":
            n = store_emb.embedding_count(conn, model) if stored_dim else 0
            kind = "hnsw" if (n > ANN_THRESHOLD and ann_available()) else "exact"
        idx = cls(model, dim, kind=kind, include_hidden=include_hidden)
        if cache_dir == "default":
            cache_dir = default_cache_dir(conn)
        if kind == "hnsw" and cache_dir is not None:
            idx.cache_path = Path(cache_dir) / f"{_safe(model)}{'.hidden' if include_hidden else ''}.usearch"
            if idx._restore():
                changed = idx.refresh(conn)
                idx.load_info = {"source": "cache", "caught_up": changed, "seconds": time.perf_counter() - t0}
                if save and changed > max(1000, len(idx) // 100):
                    idx.save()
                return idx
        for ids, vecs in store_emb.iter_paper_vectors(conn, model, include_hidden=include_hidden):
            idx._impl.add(ids, vecs)
        idx.rev, idx.seq, idx.paper_count, idx.max_rowid = rev, seq, count, max_rowid
        # Writes that landed while we read are picked up by an immediate catch-up.
        idx.refresh(conn)
        idx.load_info = {"source": "sqlite", "seconds": time.perf_counter() - t0}
        if kind == "hnsw" and save and idx.cache_path is not None:
            idx.save()
        return idx

    def add(self, rowids: Sequence[int], vecs: np.ndarray) -> None:
        """Add or replace vectors (rows L2-normalised float32) for papers ``rowids``."""
        ids = np.asarray(rowids, dtype=np.int64).reshape(-1)
        vecs = np.asarray(vecs, dtype=np.float32).reshape(len(ids), -1) if len(ids) else np.zeros((0, self.dim), np.float32)
        if len(ids) and vecs.shape[1] != self.dim:
            raise ValueError(f"index is {self.dim}-d, got {vecs.shape[1]}-d vectors")
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids):
            # A rowid given twice: the last vector wins (as if added one after another).
            rev_ids = ids[::-1]
            _, first = np.unique(rev_ids, return_index=True)
            keep = np.sort(len(ids) - 1 - first)
            ids, vecs = ids[keep], vecs[keep]
        with self._lock:
            self._impl.add(ids, vecs)

    def remove(self, rowids: Iterable[int]) -> int:
        """Drop papers from the index; returns how many were present."""
        with self._lock:
            return self._impl.remove(rowids)

    # ---------------------------------------------------------------- queries

    def __len__(self) -> int:
        return self._impl.n

    def __contains__(self, rowid: int) -> bool:
        if isinstance(self._impl, _Exact):
            return int(rowid) in self._impl.pos
        return self._impl.contains(int(rowid))

    def vector(self, rowid: int) -> np.ndarray | None:
        """The indexed vector of a paper (HNSW: from float16 storage, cosine ~0.9999 to the original)."""
        with self._lock:
            return self._impl.get(rowid)

    def vectors_for(self, rowids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(found rowids, their vectors (n, dim))`` for the given papers, in the given order,
        skipping those not indexed. One lock and one gather (cheaper than many ``vector``)."""
        with self._lock:
            if isinstance(self._impl, _Exact):
                pos = self._impl.pos
                pairs = [(int(r), pos[int(r)]) for r in rowids if int(r) in pos]
                if not pairs:
                    return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
                found = np.fromiter((p[0] for p in pairs), np.int64, len(pairs))
                return found, self._impl.mat[[p[1] for p in pairs]]
            keys = self._impl.present(np.fromiter((int(r) for r in rowids), np.int64))
            if not len(keys):
                return keys, np.zeros((0, self.dim), np.float32)
            return keys, self._impl.get_many(keys)

    def rowids(self) -> np.ndarray:
        with self._lock:
            if isinstance(self._impl, _Exact):
                return self._impl.ids[: self._impl.n].copy()
            return self._impl.keys()

    def search(
        self, qvec: np.ndarray, k: int = 10, allowed: Iterable[int] | np.ndarray | None = None, *, exclude: Iterable[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` papers by cosine to ``qvec``: ``(rowids int64, scores float32)``, best first.

        ``allowed`` restricts results to those rowids (filters); ``exclude`` drops rowids (e.g.
        the query paper itself for "similar").
        """
        q = np.asarray(qvec, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"index is {self.dim}-d, query is {q.shape[0]}-d")
        excl = {int(r) for r in exclude}
        want = k + len(excl)
        with self._lock:
            if allowed is not None:
                ids, scores = self._search_allowed(q, want, allowed)
            elif isinstance(self._impl, _Exact):
                ids, scores = self._impl.search(q, want)
            else:
                ids, scores = self._impl.search(q, want)
        if excl:
            keep = np.array([int(r) not in excl for r in ids], dtype=bool)
            ids, scores = ids[keep], scores[keep]
        return ids[:k], scores[:k]

    def neighbours_of(self, rowids: Sequence[int], k: int, *, threads: int = 0) -> dict[int, list[tuple[int, float]]]:
        """Top-``k`` neighbours of many indexed papers at once, each without itself:
        ``{rowid: [(rowid, score), ...]}`` (papers not in the index are left out).

        HNSW: one multi-threaded usearch batch query (``threads=0``: all cores), ~20x fewer
        Python round trips than one :meth:`search` per paper. Exact: one matrix product.
        """
        found, vecs = self.vectors_for(rowids)
        if not len(found) or k <= 0:
            return {}
        with self._lock:
            if isinstance(self._impl, _Exact):
                n = self._impl.n
                want = min(k + 1, n)
                ids_parts, sc_parts = [], []
                for a in range(0, len(found), 512):  # bounded memory: 512 x n scores at a time
                    scores = vecs[a : a + 512] @ self._impl.mat[:n].T
                    top = np.argpartition(-scores, want - 1, axis=1)[:, :want] if want < n else np.tile(np.arange(n), (len(scores), 1))
                    ids_parts.append(self._impl.ids[:n][top])
                    sc_parts.append(np.take_along_axis(scores, top, axis=1))
                ids, sc = np.vstack(ids_parts), np.vstack(sc_parts)
                counts = np.full(len(found), ids.shape[1])
            else:
                m = self._impl.index.search(vecs, min(k + 1, self._impl.n), threads=threads)
                ids = np.asarray(m.keys, dtype=np.int64).reshape(len(found), -1)
                sc = 1.0 - np.asarray(m.distances, dtype=np.float32).reshape(len(found), -1)
                counts = np.asarray(m.counts).reshape(-1)
        out: dict[int, list[tuple[int, float]]] = {}
        for i, r in enumerate(found.tolist()):
            limit = int(counts[i])
            order = np.argsort(-sc[i, :limit], kind="stable")
            out[r] = [(int(ids[i, j]), float(sc[i, j])) for j in order if int(ids[i, j]) != r][:k]
        return out

    def _search_allowed(self, q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        allowed_arr = np.fromiter((int(a) for a in allowed), np.int64) if not isinstance(allowed, np.ndarray) else allowed.astype(np.int64)
        if isinstance(self._impl, _Exact):
            pos = self._impl.pos
            positions = np.fromiter((pos[a] for a in allowed_arr.tolist() if a in pos), np.int64)
            if len(positions) > self._impl.n // 2:
                # Wide filter: scan everything, mask, cheaper than a gather.
                ids, scores = self._impl.search(q, self._impl.n)
                keep = np.isin(ids, allowed_arr)
                return ids[keep][:k], scores[keep][:k]
            return self._impl.search(q, k, positions)
        # HNSW: a narrow filter is scored exactly on the dequantised vectors (fetching them
        # costs ~3 us each); a wider one over-fetches from the graph and filters, widening
        # until k survive.
        allowed_set = set(allowed_arr.tolist())
        n = self._impl.n
        if len(allowed_set) <= HNSW_EXACT_FILTER_MAX:
            keys = np.fromiter((a for a in allowed_set if self._impl.contains(a)), np.int64)
            if not len(keys):
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            vecs = self._impl.get_many(keys)
            return _topk(keys, vecs @ q, k)
        # Expected survivors of a uniform filter: fetch * |allowed| / n; aim for 2x k.
        fetch = max(4 * k, 64, int(2 * k * n / max(1, len(allowed_set))))
        while True:
            ids, scores = self._impl.search(q, min(fetch, n))
            keep = np.fromiter((int(i) in allowed_set for i in ids), bool, len(ids))
            if keep.sum() >= k or fetch >= n:
                return ids[keep][:k], scores[keep][:k]
            fetch *= 4

    # ---------------------------------------------------------------- freshness

    def is_stale(self, conn: sqlite3.Connection) -> bool:
        """True when papers or this model's vectors changed since the index last caught up."""
        return current_rev(conn) != self.rev or store_emb.model_seq(conn, self.model) != self.seq

    def refresh(self, conn: sqlite3.Connection) -> int:
        """Apply what changed in the store since the last load/refresh; returns papers touched.

        Changed papers (``rev``) get their current vector or leave the index (hidden, or new
        text not embedded yet); vectors written since ``seq`` are added; deletions are found
        by counting papers.
        """
        rev, seq, count, max_rowid = _store_state(conn, self.model)
        if rev == self.rev and seq == self.seq:
            return 0
        touched = 0
        with self._lock:
            if rev != self.rev:
                changed = store_emb.changed_papers(conn, self.rev)
                new_papers = sum(1 for r in changed if r["id"] > self.max_rowid)
                ids = [r["id"] for r in changed]
                present: set[int] = set()
                for rid, vecs in store_emb.iter_paper_vectors(conn, self.model, include_hidden=self.include_hidden, rowids=ids):
                    self._impl.add(rid, vecs)
                    present.update(rid.tolist())
                self._impl.remove([i for i in ids if i not in present])
                touched += len(ids)
                if count != self.paper_count + new_papers:
                    # Some papers were deleted: drop every indexed rowid that no longer exists.
                    alive = set(all_paper_rowids(conn))
                    gone = [int(i) for i in self.rowids().tolist() if int(i) not in alive]
                    touched += self._impl.remove(gone)
            if seq != self.seq:
                for rid, vecs in store_emb.iter_paper_vectors(
                    conn, self.model, include_hidden=self.include_hidden, min_seq=self.seq
                ):
                    self._impl.add(rid, vecs)
                    touched += len(rid)
            self.rev, self.seq, self.paper_count, self.max_rowid = rev, seq, count, max_rowid
        return touched

    # ---------------------------------------------------------------- HNSW cache

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the HNSW cache (index file + JSON state) atomically; no-op for exact."""
        if not isinstance(self._impl, _Hnsw):
            return None
        path = Path(path) if path else self.cache_path
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            tmp = path.with_name(path.name + ".tmp")
            self._impl.index.save(str(tmp))
            os.replace(tmp, path)
            meta = {
                "version": _CACHE_VERSION, "model": self.model, "dim": self.dim, "rev": self.rev, "seq": self.seq,
                "paper_count": self.paper_count, "max_rowid": self.max_rowid, "size": len(self),
                "include_hidden": self.include_hidden,
            }
            mtmp = path.with_name(path.name + ".json.tmp")
            mtmp.write_text(json.dumps(meta))
            os.replace(mtmp, path.with_name(path.name + ".json"))
        return path

    def _restore(self) -> bool:
        path = self.cache_path
        meta_path = path.with_name(path.name + ".json") if path else None
        if path is None or not path.exists() or not meta_path.exists():
            return False
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("version") != _CACHE_VERSION or meta.get("model") != self.model or meta.get("dim") != self.dim:
                return False
            index = usearch_index_class().restore(str(path), view=False)
            if index is None or len(index) != meta["size"]:
                return False
        except Exception:
            # A broken cache is only a cache: rebuild from SQLite.
            return False
        self._impl = _Hnsw(self.dim, index=index)
        self.rev, self.seq = int(meta["rev"]), int(meta["seq"])
        self.paper_count, self.max_rowid = int(meta["paper_count"]), int(meta["max_rowid"])
        return True


def _store_state(conn: sqlite3.Connection, model: str) -> tuple[int, int, int, int]:
    return store_emb.index_state(conn, model)


# ---------------------------------------------------------------- helpers for build/search


def embed_missing(
    conn: sqlite3.Connection,
    embedder,
    *,
    batch: int = 512,
    include_hidden: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Embed every paper whose current text has no cached vector for ``embedder.name``.

    Unchanged text is never embedded twice (the cache is keyed by content hash; papers that
    share text share one vector). Commits every ``batch`` texts, so a kill loses at most one
    batch of work and a rerun resumes. Returns ``{"embedded": n, "papers": m, "seconds": s}``.
    """
    from paperwire.index.embeddings import paper_text

    t0 = time.perf_counter()
    rows = store_emb.papers_without_embedding(conn, embedder.name, include_hidden=include_hidden)
    by_hash: dict[str, str] = {}
    for r in rows:
        by_hash.setdefault(r["content_hash"], paper_text(r["title"], r["abstract"]))
    hashes = list(by_hash)
    done = 0
    for i in range(0, len(hashes), batch):
        part = hashes[i : i + batch]
        vecs = embedder.encode([by_hash[h] for h in part])
        store_emb.put_embeddings(conn, embedder.name, part, vecs)
        done += len(part)
        if progress:
            progress(done, len(hashes))
    return {"embedded": done, "papers": len(rows), "seconds": round(time.perf_counter() - t0, 3)}


_SHARED: dict[tuple[str, str, str, bool], VectorIndex] = {}
_SHARED_LOCK = threading.Lock()


def shared_index(conn: sqlite3.Connection, model: str, *, kind: str = "auto", include_hidden: bool = False) -> VectorIndex:
    """A process-wide index per (database file, model), loaded once and refreshed when stale.

    In-memory databases are never shared (each connection is its own database).
    """
    db = database_file(conn)
    if not db:
        return VectorIndex.load(conn, model, kind=kind, include_hidden=include_hidden)
    key = (db, model, kind, include_hidden)
    with _SHARED_LOCK:
        idx = _SHARED.get(key)
        if idx is None:
            idx = VectorIndex.load(conn, model, kind=kind, include_hidden=include_hidden)
            _SHARED[key] = idx
            return idx
    if idx.is_stale(conn):
        idx.refresh(conn)
    return idx


def clear_shared() -> None:
    """Forget every shared index (tests; after replacing a database file)."""
    with _SHARED_LOCK:
        _SHARED.clear()
