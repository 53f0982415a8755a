"""A For-you window's candidates, shared by every reader, and the model's first stage over them.

A :class:`Window` holds the visible papers listed in ``[since, until]`` at one store revision,
with their vectors: every reader's per-request work is then only the model's. The first stage
gives each candidate its LR logit (one matrix-vector product) to pick the shortlist. On a
month of 30,000 papers the float32 matrix is 46 MB, so the product is bound by memory, not
arithmetic; a cached window also keeps an int8 copy (11.5 MB, one scale per row), whose
logits carry a per-row error bound. Every row whose bound does not rule it out of the best
``n`` is rescored in float32, so the shortlist is exactly the one float32 logits give
(BENCHMARKS.md, "For you speed, round 3").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from paperwire.store import feedback as sql
from paperwire.store.meta import database_file

_WINDOWS: OrderedDict = OrderedDict()
_WINDOW_SLOTS = 6
WINDOW_CACHE_MAX = 300_000  # papers; larger windows ("all" on a big store) are read per request
INT8_MIN_ROWS = 4096  # below this the float32 product is already cheap (a day's window)
_BLOCK = 1024  # rows per int8 -> float32 block: the converted block stays in the core's cache
_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()  # building an int8 copy takes a while: not under the cache's lock


@dataclass
class Int8Copy:
    """Rows of a window's matrix as int8 times a per-row scale, with each row's rounding
    error (max and L2 norm): ``|v . w - scale * (q . w)| <= min(err_max |w|_1, err_l2 |w|_2)``."""

    q: np.ndarray        # (n, dim) int8
    scale: np.ndarray    # (n,) float32
    err_max: np.ndarray  # (n,) float32
    err_l2: np.ndarray   # (n,) float32
    vmax: float          # largest |component| of the window (float32 rounding slack)

    @classmethod
    def of(cls, vecs: np.ndarray) -> "Int8Copy | None":
        """The int8 copy of ``vecs``, or None if a row is not finite (then only float32 is exact)."""
        n, dim = vecs.shape
        q = np.empty((n, dim), np.int8)
        scale, err_max, err_l2 = (np.empty(n, np.float32) for _ in range(3))
        for i in range(0, n, _BLOCK):  # block by block: each step's temporaries stay in cache
            v = vecs[i : i + _BLOCK]
            s = np.maximum(v.max(axis=1), -v.min(axis=1))  # NaN stays NaN
            if not np.isfinite(s).all():
                return None
            s = np.where(s > 0, s / np.float32(127.0), np.float32(1.0)).astype(np.float32)
            t = np.multiply(v, (np.float32(1.0) / s)[:, None])
            np.rint(t, out=t)
            q[i : i + _BLOCK] = t
            t *= s[:, None]
            np.subtract(v, t, out=t)  # each component's rounding error
            scale[i : i + _BLOCK] = s
            err_max[i : i + _BLOCK] = s * np.float32(0.5)  # rounding to nearest (a 2nd max pass costs more than it gains)
            err_l2[i : i + _BLOCK] = np.sqrt(np.einsum("ij,ij->i", t, t))
        return cls(q, scale, err_max, err_l2, float((scale * 127.0).max()) if n else 0.0)

    def logits(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(approximate ``vecs @ w``, a bound on each row's error)."""
        n, dim = self.q.shape
        out = np.empty(n, np.float32)
        buf = np.empty((min(_BLOCK, n), dim), np.float32)
        for i in range(0, n, _BLOCK):
            j = min(i + _BLOCK, n)
            b = buf[: j - i]
            b[...] = self.q[i:j]
            np.matmul(b, w, out=out[i:j])
        out *= self.scale
        w1, w2 = float(np.abs(w).sum()), float(np.linalg.norm(w))
        bound = np.minimum(self.err_max * np.float32(w1), self.err_l2 * np.float32(w2))
        # Both this product and the float32 rescoring round; a float32 dot product of d terms
        # is off by at most d * 2**-24 * sum|v_j w_j| (any summation order): slack for both.
        bound += np.float32(4 * dim * 2.0**-24 * self.vmax * w1 + 1e-6)
        return out, bound


@dataclass
class Window:
    """A window's visible papers and their vectors, shared by every reader until the store
    changes (an import, a hide): the per-reader work is then only the model's."""

    ids: np.ndarray                       # rowids, ascending
    vecs: np.ndarray | None = None        # (len(ids), dim) or None without an index
    since: str | None = None
    until: str | None = None
    _cats: dict[str, list[int]] | None = None
    shared: bool = False                  # kept in the window cache (worth an int8 copy)
    _int8: Int8Copy | None | bool = False  # False: not built yet; None: not possible

    def by_category(self, conn) -> dict[str, list[int]]:
        """category -> the window's rowids in it, newest first (read once per window)."""
        if self._cats is None:
            cats: dict[str, list[int]] = {}
            for r, c in sql.window_categories(conn, self.since, self.until):
                cats.setdefault(c, []).append(r)
            for v in cats.values():
                v.sort(reverse=True)
            self._cats = cats
        return self._cats

    def int8(self) -> Int8Copy | None:
        """The int8 copy, built on first use (once per store revision), for shared windows
        of at least ``INT8_MIN_ROWS`` papers; None otherwise."""
        if self._int8 is False:
            with _BUILD_LOCK:
                if self._int8 is False:
                    ok = self.shared and self.vecs is not None and len(self.ids) >= INT8_MIN_ROWS
                    self._int8 = Int8Copy.of(self.vecs) if ok else None
        return self._int8 or None

    def top_logits(self, w: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
        """Positions of the ``n`` rows among ``keep`` with the largest ``vecs @ w``, as the
        float32 product ranks them (ties at the cut in any order)."""
        total = int(keep.sum())
        if n >= total:
            return np.flatnonzero(keep)
        if n <= 0:
            return np.zeros(0, np.int64)
        q = self.int8() if np.isfinite(w).all() else None  # a bound on NaN means nothing
        if q is None:
            lin = np.where(keep, self.vecs @ w, -np.inf)
            return np.argpartition(-lin, n - 1)[:n]
        approx, bound = q.logits(w)
        low = np.where(keep, approx - bound, -np.inf)
        # The n-th best lower bound is at most the n-th best exact logit: a row whose upper
        # bound stays under it cannot be among the best n.
        cut = np.partition(low, len(low) - n)[len(low) - n]
        cand = np.flatnonzero(keep & (approx + bound >= cut))
        exact = self.vecs[cand] @ w
        return cand[np.argpartition(-exact, n - 1)[:n]] if len(cand) > n else cand


def members(sorted_ids: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Boolean mask over ``sorted_ids`` (ascending, unique): which are in ``among``. A binary
    search per member of ``among`` instead of np.isin's sort of both arrays."""
    mask = np.zeros(len(sorted_ids), bool)
    if len(among) and len(sorted_ids):
        at = np.minimum(np.searchsorted(sorted_ids, among), len(sorted_ids) - 1)
        mask[at[sorted_ids[at] == among]] = True
    return mask


def positions(sorted_ids: np.ndarray, rowids) -> np.ndarray:
    """Positions in ``sorted_ids`` (ascending, unique) of those ``rowids`` present there."""
    r = np.fromiter(rowids, np.int64) if not isinstance(rowids, np.ndarray) else rowids.astype(np.int64, copy=False)
    if not len(r) or not len(sorted_ids):
        return np.zeros(0, np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, r), len(sorted_ids) - 1)
    return at[sorted_ids[at] == r]


def window_of(conn, since: str | None, until: str | None, idx) -> Window:
    """The cached :class:`Window` for ``[since, until]`` at the current store revision."""
    from paperwire.store.papers import current_rev

    key = (database_file(conn) or f":memory:{id(conn)}", current_rev(conn), since, until,
           getattr(idx, "model", None), getattr(idx, "seq", 0), len(idx) if idx is not None else 0)
    with _LOCK:
        if key in _WINDOWS:
            _WINDOWS.move_to_end(key)
            return _WINDOWS[key]
    ids = np.array(sorted(sql.window_rowids(conn, since, until)), np.int64)
    win = Window(ids, since=since, until=until)
    if idx is not None and len(ids):
        found, vecs = idx.vectors_for(ids)
        if len(found) > 1 and bool((np.diff(found) <= 0).any()):  # ids must be ascending: lookups bisect them
            order = np.argsort(found, kind="stable")
            found, vecs = found[order], vecs[order]
        win = Window(found, np.ascontiguousarray(vecs, np.float32), since=since, until=until)
    if len(ids) <= WINDOW_CACHE_MAX:
        win.shared = True
        with _LOCK:
            _WINDOWS[key] = win
            while len(_WINDOWS) > _WINDOW_SLOTS:
                _WINDOWS.popitem(last=False)
    return win


def clear() -> None:
    """Forget every cached window."""
    with _LOCK:
        _WINDOWS.clear()
