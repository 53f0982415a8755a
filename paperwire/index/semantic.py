"""Semantic side of search: which embedder to use, and an in-process vector view.

The durable vectors are the embed area's cache (``paperwire.store.embeddings``, keyed by
content hash). For querying, this module keeps one :class:`VectorView` per (database
file, model) in the process -- the web app calls :func:`get_view` per request -- and
reloads it when the store revision or the model's write sequence moves. When the
embed area's ANN index (``paperwire.index.vectors``) is present it is used for the
top-k search; otherwise the view does an exact dot product (fine to ~200k papers).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from paperwire.store import embeddings as emb_store
from paperwire.store import search as sql
from paperwire.store.meta import database_file

_VIEWS: dict[tuple[str, str], "VectorView"] = {}
_LOCK = threading.Lock()
# How often (seconds) a cached view re-checks the store for changes.
RECHECK_S = 0.0
# Query vectors kept per process (384 float32 each: ~1.6 kB, so ~7 MB at most).
QUERY_CACHE_SIZE = 4096

_QUERY_VECS: OrderedDict = OrderedDict()
_QUERY_LOCK = threading.Lock()


def db_key(conn: sqlite3.Connection) -> str:
    """The file behind a connection (":memory:" connections get a per-connection key)."""
    return database_file(conn) or f":memory:{id(conn)}"


def resolve_embedder(conn: sqlite3.Connection, embedder=None):
    """The embedder for querying: the one given, else the model the index was built with,
    else the default. Returns (embedder or None, note or None)."""
    from paperwire.index.embeddings import EmbedderUnavailable, get_embedder

    if embedder is not None and not isinstance(embedder, str):
        return embedder, None
    name = embedder or sql.get_state(conn, "model") or "auto"
    if name.startswith("fake-") and name[5:].isdigit():
        name = f"fake:{name[5:]}"
    try:
        return get_embedder(name), None
    except EmbedderUnavailable as exc:
        return None, f"semantic search unavailable: {exc}"
    except Exception as exc:  # a broken model install must not break lexical search
        return None, f"semantic search unavailable: {type(exc).__name__}: {exc}"


def encode_query(embedder, text: str) -> np.ndarray:
    """The embedder's vector for a search query, from a per-process LRU cache.

    A query vector depends only on the model and the text, never on the store, so a cached
    one is never stale: it outlives imports, votes and hides, which empty the web page cache
    (keyed on store revisions) while the same popular queries keep arriving. Keyed on the
    embedder's name (which by contract names interchangeable vectors), its dimension and
    the text with whitespace runs collapsed (every tokenizer here splits on whitespace)."""
    key = (embedder.name, embedder.dim, " ".join(text.split()))
    with _QUERY_LOCK:
        vec = _QUERY_VECS.get(key)
        if vec is not None:
            _QUERY_VECS.move_to_end(key)
            return vec
    vec = np.asarray(embedder.encode([key[2]])[0], dtype=np.float32)
    vec.setflags(write=False)  # shared between requests: nobody may change it in place
    with _QUERY_LOCK:
        _QUERY_VECS[key] = vec
        while len(_QUERY_VECS) > QUERY_CACHE_SIZE:
            _QUERY_VECS.popitem(last=False)
    return vec


@dataclass
class VectorView:
    """All visible papers' vectors of one model, in memory, for exact top-k and lookups."""

    model: str
    rowids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    seq: int = -1
    rev: int = -1
    checked: float = 0.0
    _pos: dict | None = None

    def __len__(self) -> int:
        return len(self.rowids)

    def load(self, conn: sqlite3.Connection, seq: int, rev: int) -> None:
        self.rowids, self.matrix = emb_store.paper_vectors(conn, self.model, include_hidden=False)
        self.rowids = np.ascontiguousarray(self.rowids)
        self.matrix = np.ascontiguousarray(self.matrix, dtype=np.float32)
        self.seq, self.rev = seq, rev
        self._pos = None

    def position(self) -> dict:
        if self._pos is None:
            self._pos = {int(r): i for i, r in enumerate(self.rowids)}
        return self._pos

    def vectors_for(self, rowids) -> tuple[list[int], np.ndarray]:
        """(rowids found, their vectors)."""
        pos = self.position()
        found = [int(r) for r in rowids if int(r) in pos]
        if not found:
            return [], np.zeros((0, self.matrix.shape[1] if self.matrix.ndim == 2 else 0), np.float32)
        return found, self.matrix[[pos[r] for r in found]]

    def top(self, qvec: np.ndarray, k: int, *, exclude: int | None = None) -> list[tuple[int, float]]:
        """Exact top-k (rowid, cosine) for one query vector."""
        n = len(self.rowids)
        if n == 0 or k <= 0:
            return []
        scores = self.matrix @ np.asarray(qvec, dtype=np.float32).reshape(-1)
        kk = min(n, k + (1 if exclude is not None else 0))
        idx = np.argpartition(-scores, kk - 1)[:kk] if kk < n else np.arange(n)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        out = [(int(self.rowids[i]), float(scores[i])) for i in idx if int(self.rowids[i]) != exclude]
        return out[:k]

    def top_many(self, qmat: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k for many query rows: (rowids (m, k), scores (m, k)), best first.
        ``exclude[i]`` (a rowid) is left out of row i (the paper itself)."""
        n = len(self.rowids)
        m = len(qmat)
        kk = min(n, k + 1)
        out_ids = np.full((m, k), -1, np.int64)
        out_sc = np.full((m, k), -np.inf, np.float32)
        if n == 0:
            return out_ids, out_sc
        step = max(1, min(1024, 50_000_000 // max(n, 1)))
        for a in range(0, m, step):
            s = qmat[a : a + step] @ self.matrix.T  # (b, n)
            if kk < n:
                part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            else:
                part = np.tile(np.arange(n), (len(s), 1))
            ps = np.take_along_axis(s, part, axis=1)
            order = np.argsort(-ps, axis=1, kind="stable")
            part = np.take_along_axis(part, order, axis=1)
            ps = np.take_along_axis(ps, order, axis=1)
            for j in range(len(s)):
                ids = self.rowids[part[j]]
                sc = ps[j]
                if exclude is not None:
                    keep = ids != exclude[a + j]
                    ids, sc = ids[keep], sc[keep]
                c = min(k, len(ids))
                out_ids[a + j, :c] = ids[:c]
                out_sc[a + j, :c] = sc[:c]
        return out_ids, out_sc


def get_view(conn: sqlite3.Connection, model: str, *, force_check: bool = False) -> VectorView:
    """A full in-memory matrix of the model's vectors for batch work (similar-paper
    lists at index time), cached per process and reloaded when the store changed."""
    key = (db_key(conn), model)
    with _LOCK:
        view = _VIEWS.get(key)
        if view is None:
            view = _VIEWS[key] = VectorView(model)
    now = time.monotonic()
    if force_check or view.seq < 0 or now - view.checked >= RECHECK_S:
        seq = emb_store.model_seq(conn, model)
        rev = sql.store_rev(conn)
        if seq != view.seq or rev != view.rev:
            with _LOCK:
                if seq != view.seq or rev != view.rev:
                    view.load(conn, seq, rev)
        view.checked = now
    return view


class QueryIndex:
    """What search needs from a vector index: top-k for a query vector and vectors of given
    papers. Wraps the embed area's shared :class:`paperwire.index.vectors.VectorIndex`
    (exact below its ANN threshold, usearch HNSW above), which is cached per database file
    and caught up incrementally when the store changes."""

    def __init__(self, index):
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def top(self, qvec: np.ndarray, k: int, *, exclude: int | None = None, allowed=None) -> list[tuple[int, float]]:
        k = max(0, min(int(k), len(self.index)))
        if k == 0:
            return []
        ids, scores = self.index.search(qvec, k, allowed=allowed, exclude=() if exclude is None else (exclude,))
        return list(zip(ids.tolist(), scores.tolist()))

    def vectors_for(self, rowids) -> tuple[list[int], np.ndarray]:
        """(rowids present, their vectors), in one batch."""
        found, vecs = self.index.vectors_for(rowids)
        return found.tolist(), vecs


def get_query_index(conn: sqlite3.Connection, model: str) -> QueryIndex:
    """The process-wide vector index for querying this database with ``model``."""
    from paperwire.index.vectors import shared_index

    return QueryIndex(shared_index(conn, model))


def drop_views() -> None:
    """Forget cached views, indexes and query vectors (tests; after rebuilding a database in place)."""
    from paperwire.index.vectors import clear_shared

    with _LOCK:
        _VIEWS.clear()
    with _QUERY_LOCK:
        _QUERY_VECS.clear()
    clear_shared()
