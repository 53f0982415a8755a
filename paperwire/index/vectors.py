"""Nearest-neighbour search over paper vectors.

The durable vectors live in SQLite (:mod:`paperwire.store.embeddings`, float32 blobs keyed by
(model, content_hash)). This module holds the *rebuildable* in-memory index over them:

* ``kind="exact"``: a float32 matrix and one BLAS mat-vec per query; exact, fine up to
  some tens of thousands of papers (see BENCHMARKS.md for the timings).
* ``kind="hnsw"``: a usearch HNSW graph (extra ``ann``) with float16 vectors, saved
  next to the database as a snapshot (``<db>.vectors/``, :mod:`paperwire.index.snapshot`)
  that every process of a node memory-maps read-only (shared through the page cache) and
  catches up with a small private delta. Recall@10 vs exact: bench/vectors_search.py.
* ``kind="auto"``: HNSW when usearch is installed and there are more than
  :data:`ANN_THRESHOLD` vectors, else exact.

Freshness: the index remembers the store revision (``papers.rev``) and the embedding write
sequence it has seen; :meth:`VectorIndex.is_stale` compares them (two one-row queries) and
:meth:`VectorIndex.refresh` applies only what changed since.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from paperwire.index import snapshot
from paperwire.index.vector_kinds import (  # noqa: F401 - re-exported: callers import them from here
    HNSW_DTYPE,
    HNSW_EXACT_FILTER_MAX,
    PIP_ANN,
    _Exact,
    _Hnsw,
    _topk,
    _unit,
    ann_available,
    usearch_index_class,
)
from paperwire.store import embeddings as store_emb
from paperwire.store.meta import database_file
from paperwire.store.papers import all_paper_rowids, current_rev

# Above this many vectors "auto" uses HNSW (if usearch is installed): an exact mat-vec over
# 384-d float32 costs ~0.1 ms per 1,000 vectors on 2 cores, so ~5 ms at 50k.
ANN_THRESHOLD = int(os.environ.get("PAPERWIRE_ANN_THRESHOLD", "50000"))


def default_cache_dir(conn: sqlite3.Connection) -> Path | None:
    """``<db file>.vectors/`` beside the database, or None for an in-memory database."""
    path = database_file(conn)
    if not path:
        return None
    p = Path(path)
    return p.with_name(p.name + ".vectors")


def _safe(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model)


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
        # HNSW with a node snapshot: snapshot.Mapped (mapped file + private delta).
        self._impl: _Exact | _Hnsw | snapshot.Mapped = _Exact(dim) if kind == "exact" else _Hnsw(dim)
        self._lock = threading.RLock()
        # What of the store this index reflects (see is_stale/refresh).
        self.rev = 0
        self.seq = 0
        self.paper_count = 0
        self.max_rowid = 0
        self.cache_path: Path | None = None  # the snapshot file in use (HNSW)
        self.base_path: Path | None = None  # its logical name, <dir>/<model>.usearch (manifest beside it)
        self._stamp: tuple | None = None  # the manifest's stat when last read
        self.autosave = True  # may rewrite the snapshot when the delta grows (load(save=False): never)
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

        For HNSW, the node's snapshot in ``cache_dir`` (default ``<db>.vectors/``; None = no
        cache: the index stays in this process's memory) is memory-mapped when it matches and
        caught up with :meth:`refresh`; a missing or broken one is rebuilt from SQLite by one
        process of the node (the others wait on its lock, then map it) and saved (unless
        ``save=False``).
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
        idx.autosave = save
        if cache_dir == "default":
            cache_dir = default_cache_dir(conn)
        if kind == "hnsw" and cache_dir is not None:
            idx.base_path = idx.cache_path = Path(cache_dir) / f"{_safe(model)}{'.hidden' if include_hidden else ''}.usearch"
            for attempt in (0, 1):
                # Second pass under the node lock: another process may have just built it.
                with snapshot.node_lock(idx.base_path) if attempt else _nolock():
                    if idx._restore():
                        changed = idx.refresh(conn)
                        idx.load_info = {"source": "cache", "caught_up": changed, "seconds": time.perf_counter() - t0}
                        if save and changed > max(1000, len(idx) // 100):
                            idx.save(locked=bool(attempt))
                        return idx
                    if attempt:
                        idx._build(conn, rev, seq, count, max_rowid)
                        idx.load_info = {"source": "sqlite", "seconds": time.perf_counter() - t0}
                        if save:
                            idx.save(locked=True)
                        return idx
        idx._build(conn, rev, seq, count, max_rowid)
        idx.load_info = {"source": "sqlite", "seconds": time.perf_counter() - t0}
        return idx

    def _build(self, conn: sqlite3.Connection, rev: int, seq: int, count: int, max_rowid: int) -> None:
        for ids, vecs in store_emb.iter_paper_vectors(conn, self.model, include_hidden=self.include_hidden):
            self._impl.add(ids, vecs)
        self.rev, self.seq, self.paper_count, self.max_rowid = rev, seq, count, max_rowid
        # Writes that landed while we read are picked up by an immediate catch-up.
        self.refresh(conn)

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
            elif isinstance(self._impl, snapshot.Mapped):
                rows = self._impl.search_many(vecs, min(k + 1, self._impl.n), threads=threads)
                width = max((len(r[0]) for r in rows), default=0)
                ids, sc = np.full((len(rows), width), -1, np.int64), np.full((len(rows), width), -np.inf, np.float32)
                for i, (ri, rs) in enumerate(rows):
                    ids[i, : len(ri)], sc[i, : len(rs)] = ri, rs
                counts = np.array([len(r[0]) for r in rows])
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
        if self.base_path is not None and snapshot.manifest_stamp(self.base_path) != self._stamp:
            return True  # another process of the node wrote a new snapshot: remap it
        return current_rev(conn) != self.rev or store_emb.model_seq(conn, self.model) != self.seq

    def refresh(self, conn: sqlite3.Connection) -> int:
        """Apply what changed in the store since the last load/refresh; returns papers touched.

        Changed papers (``rev``) get their current vector or leave the index (hidden, or new
        text not embedded yet); vectors written since ``seq`` are added; deletions are found
        by counting papers.
        """
        if self.base_path is not None and snapshot.manifest_stamp(self.base_path) != self._stamp:
            with self._lock:
                self._restore()  # a newer snapshot: map it, drop our delta, catch up from its state
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
        self.maybe_checkpoint()
        return touched

    # ---------------------------------------------------------------- HNSW cache

    def save(self, path: str | Path | None = None, *, locked: bool = False) -> Path | None:
        """Write the node's HNSW snapshot (the index with this process's delta folded in) and
        switch to mapping it; no-op for exact. Atomic: readers and a crash mid-write see the
        previous snapshot. ``locked``: the caller holds :func:`snapshot.node_lock`."""
        if isinstance(self._impl, _Exact):
            return None
        base = Path(path) if path else self.base_path
        if base is None:
            return None
        self.base_path = base
        with contextlib.ExitStack() as stack:
            if not locked:
                stack.enter_context(snapshot.node_lock(base))
            with self._lock:
                if isinstance(self._impl, snapshot.Mapped) and not self._impl.delta_size() and self._current(base):
                    return self.cache_path
                # A mapped snapshot is rewritten from a private copy (the index's size in
                # memory until it is mapped again); an in-memory index is saved as it is.
                full = self._impl.merged(usearch_index_class()) if isinstance(self._impl, snapshot.Mapped) else self._impl.index
                meta = {
                    "model": self.model, "dim": self.dim, "rev": self.rev, "seq": self.seq,
                    "paper_count": self.paper_count, "max_rowid": self.max_rowid, "size": len(full),
                    "include_hidden": self.include_hidden,
                }
                file = snapshot.write_snapshot(full, base, meta)
                del full
                self._restore()
        snapshot.trim_heap()
        return file

    def _current(self, base: Path) -> bool:
        meta = snapshot.read_manifest(base)
        return meta is not None and meta["file"] == self.cache_path

    def maybe_checkpoint(self) -> bool:
        """Rewrite the snapshot when this process's delta outgrew ``snapshot.DELTA_MAX``,
        unless another process of the node is already at it (it will be remapped)."""
        if not self.autosave or not isinstance(self._impl, snapshot.Mapped) or self._impl.delta_size() <= snapshot.DELTA_MAX:
            return False
        with snapshot.node_lock(self.base_path, blocking=False) as got:
            if not got or snapshot.manifest_stamp(self.base_path) != self._stamp:
                return False
            try:
                self.save(locked=True)
            except Exception:  # noqa: BLE001 - e.g. the cache folder was deleted: keep serving from the delta
                return False
        return True

    def _restore(self) -> bool:
        """Map the snapshot the manifest names (resetting the state to its own); False and
        nothing changed when there is none, or it does not match this index."""
        base = self.base_path
        if base is None:
            return False
        self._stamp = snapshot.manifest_stamp(base)
        meta = snapshot.read_manifest(base)
        if meta is None or meta.get("version") != snapshot.MANIFEST_VERSION or meta.get("model") != self.model or meta.get("dim") != self.dim:
            return False
        try:
            Index = usearch_index_class()
        except ImportError:
            return False
        view = snapshot.open_view(Index, meta["file"], size=int(meta["size"]), expansion_search=_Hnsw.SEARCH_EF)
        if view is None:
            return False
        self._impl = snapshot.Mapped(view, meta["file"], _Exact(self.dim))
        self.cache_path = meta["file"]
        self.rev, self.seq = int(meta["rev"]), int(meta["seq"])
        self.paper_count, self.max_rowid = int(meta["paper_count"]), int(meta["max_rowid"])
        return True


@contextlib.contextmanager
def _nolock():
    yield True


def _store_state(conn: sqlite3.Connection, model: str) -> tuple[int, int, int, int]:
    return store_emb.index_state(conn, model)


# ---------------------------------------------------------------- helpers for build/search


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


def checkpoint(conn: sqlite3.Connection, model: str, *, min_delta: int = snapshot.CHECKPOINT_MIN) -> Path | None:
    """Fold this process's delta of ``model``'s shared HNSW index into the node's snapshot
    when it holds at least ``min_delta`` changes (whoever indexes calls this after a run, so
    serving processes map a fresh snapshot instead of each keeping the same delta)."""
    db = database_file(conn)
    with _SHARED_LOCK:
        found = [i for k, i in _SHARED.items() if k[0] == db and k[1] == model]
    saved = None
    for idx in found:
        if isinstance(idx._impl, snapshot.Mapped) and idx._impl.delta_size() >= max(1, min_delta):
            try:
                saved = idx.save()
            except Exception:  # noqa: BLE001 - only a cache: the next load rebuilds it from the store
                saved = None
    return saved


def clear_shared() -> None:
    """Forget every shared index (tests; after replacing a database file)."""
    with _SHARED_LOCK:
        _SHARED.clear()
