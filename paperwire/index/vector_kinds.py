"""The two in-memory kinds of vector index behind :class:`paperwire.index.vectors.VectorIndex`:
an exact float32 matrix and a usearch HNSW graph (extra ``ann``), plus the usearch import."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

PIP_ANN = "pip install 'paperwire[ann]'"
# HNSW + filter: up to this many allowed rowids are scored exactly, above it the graph is
# over-fetched (bench/vectors_search.py: a 5% filter on 100k took 17 ms exactly).
HNSW_EXACT_FILTER_MAX = 2000
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

    SEARCH_EF = 96

    def __init__(self, dim: int, *, index=None, dtype: str = HNSW_DTYPE, connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = SEARCH_EF):
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
        self.index.expansion_search = expansion_search  # a restored file does not keep it

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
