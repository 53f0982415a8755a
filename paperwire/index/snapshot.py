"""The node's HNSW snapshot: one usearch file per model, memory-mapped by every process.

A web node runs several processes (``paperwire serve --workers N``) and each needs the vector
index. Loading it into each process's heap costs ~1.2 GB per process at 1M papers (float16
vectors plus the graph). Instead the index is saved as a *snapshot* file in the node's cache
folder (``<db>.vectors/``, or ``meta.cache_base`` for a URL store) and opened with usearch's
read-only memory map (``view=True``): the OS page cache holds it once per node, shared by all
processes, and only a small per-process *delta* lives in private memory:

* papers added or re-embedded since the snapshot: an exact float32 matrix (the delta);
* snapshot papers that were changed, hidden or deleted since: a set of "dead" keys filtered
  out of the snapshot's answers.

Files (for ``<model>.usearch``, the logical name):

* ``<model>.snap-<tag>.usearch``: a snapshot, never written in place after it is renamed
  into its name (a mapped file that changed under a reader would crash it with SIGBUS);
* ``<model>.usearch.json``: the manifest, naming the current snapshot file and the store
  state it reflects (rev, seq, ...). It is replaced last (tmp + fsync + ``os.replace``), so a
  reader sees the old snapshot or the new one, never half a file; a crash at any point
  leaves the previous manifest and its file intact. Old snapshot files are deleted after the
  switch; processes that still map one keep reading it (Linux keeps unlinked mapped files).
* ``<model>.usearch.lock``: an ``flock`` so only one process of a node builds or rewrites.

A manifest without ``file`` (the layout before snapshots) names ``<model>.usearch`` itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Iterable

import numpy as np

from paperwire.index.vector_kinds import _unit

try:  # POSIX; elsewhere the lock is a no-op (one process per node there)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MANIFEST_VERSION = 2  # same as the pre-snapshot cache version: old caches stay usable
# How many delta vectors plus dead keys a serving process tolerates before it rewrites the
# snapshot (a ~1.5 ms exact scan of 20k float32 rows per query; ~30 MB of private memory).
DELTA_MAX = int(os.environ.get("PAPERWIRE_VECTOR_DELTA_MAX", "20000"))
# The indexer folds its delta into the snapshot after a run from this size on: below it,
# rewriting the whole file (~1.2 GB per 1M papers) costs more than each process's small delta.
CHECKPOINT_MIN = int(os.environ.get("PAPERWIRE_VECTOR_CHECKPOINT_MIN", "1000"))


def manifest_path(base: Path) -> Path:
    return base.with_name(base.name + ".json")


def read_manifest(base: Path) -> dict | None:
    """The manifest as a dict (with ``file`` resolved to a Path), or None if absent/broken."""
    try:
        meta = json.loads(manifest_path(base).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    meta["file"] = base.with_name(meta["file"]) if meta.get("file") else base
    return meta


def manifest_stamp(base: Path) -> tuple | None:
    """A cheap change marker of the manifest (one ``stat``): inode, mtime, size."""
    try:
        st = os.stat(manifest_path(base))
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextlib.contextmanager
def node_lock(base: Path, *, blocking: bool = True):
    """Hold ``<base>.lock`` (one builder/rewriter per node); yields False if not blocking and busy."""
    base.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield True
        return
    fd = os.open(base.with_name(base.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _fsync_path(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_snapshot(index, base: Path, meta: dict) -> Path:
    """Save usearch ``index`` as a new snapshot of ``base`` and switch the manifest to it.

    Call with :func:`node_lock` held. Returns the snapshot file's path."""
    base.parent.mkdir(parents=True, exist_ok=True)
    stem = base.name[: -len(".usearch")] if base.name.endswith(".usearch") else base.name
    name = f"{stem}.snap-r{meta.get('rev', 0)}s{meta.get('seq', 0)}-{secrets.token_hex(4)}.usearch"
    final = base.with_name(name)
    tmp = final.with_name(final.name + ".tmp")
    index.save(str(tmp))
    _fsync_path(tmp)
    os.replace(tmp, final)
    man = dict(meta, version=MANIFEST_VERSION, file=name)
    mtmp = manifest_path(base).with_name(manifest_path(base).name + ".tmp")
    with open(mtmp, "w", encoding="utf-8") as fh:
        json.dump(man, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(mtmp, manifest_path(base))
    _fsync_path(base.parent, directory=True)
    _remove_old(base, stem, keep=final)
    return final


def _remove_old(base: Path, stem: str, keep: Path) -> None:
    # Only files of this logical index: "<stem>.snap-*" never matches "<stem>.hidden.snap-*".
    olds = list(base.parent.glob(f"{stem}.snap-*.usearch")) + list(base.parent.glob(f"{stem}.snap-*.usearch.tmp"))
    if base.exists():
        olds.append(base)  # a pre-snapshot cache file
    for p in olds:
        if p != keep:
            with contextlib.suppress(OSError):
                p.unlink()


def trim_heap() -> None:
    """Give freed heap back to the OS (glibc ``malloc_trim``) after an in-memory index was
    dropped for its mapped snapshot; elsewhere a no-op (the builder of a node's snapshot
    otherwise keeps much of the heap it freed)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def open_view(index_class, path: Path, *, size: int, expansion_search: int):
    """Memory-map a snapshot read-only; None when it is missing, broken or not ``size`` long."""
    try:
        view = index_class.restore(str(path), view=True)
    except Exception:  # noqa: BLE001 - a broken cache is only a cache
        return None
    if view is None or len(view) != size:
        return None
    view.expansion_search = expansion_search  # not kept in the file
    return view


class Mapped:
    """A read-only mapped snapshot plus a per-process delta, with :class:`vectors._Hnsw`'s
    interface (``n``, ``add``, ``remove``, ``contains``, ``present``, ``get``, ``get_many``,
    ``keys``, ``search``). ``delta`` is an empty exact index (``vectors._Exact``)."""

    def __init__(self, view, file: Path, delta):
        self.base = view
        self.file = file
        self.delta = delta
        self.dead: set[int] = set()
        self.dim = delta.dim

    # ---------------------------------------------------------------- state

    @property
    def n(self) -> int:
        return len(self.base) - len(self.dead) + self.delta.n

    def delta_size(self) -> int:
        return self.delta.n + len(self.dead)

    def _in_base(self, rowid: int) -> bool:
        return rowid not in self.dead and bool(self.base.contains(rowid))

    # ---------------------------------------------------------------- mutation (never the view)

    def add(self, rowids: np.ndarray, vecs: np.ndarray) -> None:
        for r in rowids.tolist():
            if self._in_base(int(r)):
                self.dead.add(int(r))
        self.delta.add(np.asarray(rowids, np.int64), np.asarray(vecs, np.float32))

    def remove(self, rowids: Iterable[int]) -> int:
        removed = 0
        for r in {int(r) for r in rowids}:
            hit = self.delta.remove([r]) > 0
            if self._in_base(r):
                self.dead.add(r)
                hit = True
            removed += hit
        return removed

    # ---------------------------------------------------------------- lookups

    def contains(self, rowid: int) -> bool:
        return int(rowid) in self.delta.pos or self._in_base(int(rowid))

    def present(self, rowids: np.ndarray) -> np.ndarray:
        if not len(rowids):
            return rowids[:0]
        in_delta = np.fromiter((int(r) in self.delta.pos for r in rowids), bool, len(rowids))
        in_base = np.asarray(self.base.contains(rowids.astype(np.uint64)), dtype=bool).reshape(-1) if len(self.base) else np.zeros(len(rowids), bool)
        if self.dead:
            in_base &= ~np.isin(rowids, np.fromiter(self.dead, np.int64, len(self.dead)))
        return rowids[in_delta | in_base]

    def get(self, rowid: int) -> np.ndarray | None:
        v = self.delta.get(rowid)
        if v is not None:
            return v
        if not self._in_base(int(rowid)):
            return None
        return _unit(np.asarray(self.base.get(int(rowid), dtype=np.float32), np.float32).reshape(1, -1))[0]

    def get_many(self, rowids: np.ndarray) -> np.ndarray:
        """Vectors of ``rowids`` (all present): delta rows as stored, snapshot rows renormalised."""
        rowids = np.asarray(rowids, np.int64)
        out = np.empty((len(rowids), self.dim), np.float32)
        pos = self.delta.pos
        in_delta = np.fromiter((int(r) in pos for r in rowids), bool, len(rowids))
        if in_delta.any():
            out[in_delta] = self.delta.mat[[pos[int(r)] for r in rowids[in_delta]]]
        rest = ~in_delta
        if rest.any():
            got = np.asarray(self.base.get(rowids[rest].astype(np.uint64), dtype=np.float32), np.float32)
            out[rest] = _unit(got.reshape(int(rest.sum()), self.dim))
        return out

    def keys(self) -> np.ndarray:
        base = np.asarray(self.base.keys, dtype=np.int64)
        if self.dead:
            base = base[~np.isin(base, np.fromiter(self.dead, np.int64, len(self.dead)))]
        return np.concatenate([base, self.delta.ids[: self.delta.n]])

    # ---------------------------------------------------------------- search

    def _base_many(self, qs: np.ndarray, k: int, threads: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``k`` live snapshot hits per query row: over-fetch past dead keys, widen if short."""
        nb = len(self.base)
        out: list = [None] * len(qs)
        todo = np.arange(len(qs))
        fetch = k + min(len(self.dead), 4 * k + 64)
        while len(todo):
            want = min(fetch, nb)
            m = self.base.search(qs[todo], want, threads=threads)
            keys = np.asarray(m.keys, dtype=np.int64).reshape(len(todo), -1)
            dist = np.asarray(m.distances, dtype=np.float32).reshape(len(todo), -1)
            # One query row gives a Matches (already cut to what was found), several a BatchMatches.
            counts = np.asarray(m.counts).reshape(-1) if hasattr(m, "counts") else np.array([keys.shape[1]])
            short = []
            for j, qi in enumerate(todo.tolist()):
                c = int(counts[j])
                ids, sc = keys[j, :c], 1.0 - dist[j, :c]  # usearch "cos" distance = 1 - cosine
                if self.dead:
                    keep = np.fromiter((int(i) not in self.dead for i in ids), bool, len(ids))
                    ids, sc = ids[keep], sc[keep]
                if len(ids) < k and c == want and want < nb:
                    short.append(qi)
                elif len(ids) < min(k, nb - len(self.dead)):
                    # The graph gave fewer than asked although more live keys exist (a small or
                    # sparse graph can leave some unreachable from the entry point): exact scan.
                    out[qi] = self._exact_base(qs[qi], k)
                else:
                    out[qi] = (ids[:k], sc[:k])
            todo = np.asarray(short, dtype=np.int64)
            fetch *= 4
        return out

    def _exact_base(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` live snapshot hits of one query by brute force over the mapped vectors."""
        m = self.base.search(q, min(k + len(self.dead), len(self.base)), exact=True)
        ids = np.asarray(m.keys, dtype=np.int64).reshape(-1)
        sc = 1.0 - np.asarray(m.distances, dtype=np.float32).reshape(-1)
        if self.dead:
            keep = np.fromiter((int(i) not in self.dead for i in ids), bool, len(ids))
            ids, sc = ids[keep], sc[keep]
        return ids[:k], sc[:k]

    def search_many(self, qs: np.ndarray, k: int, threads: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``k`` ``(rowids, cosines)`` per query row over snapshot and delta, best first."""
        qs = np.ascontiguousarray(qs, dtype=np.float32).reshape(-1, self.dim)
        if k <= 0 or not len(qs):
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(len(qs))]
        parts = self._base_many(qs, k, threads) if len(self.base) else [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(qs)
        if not self.delta.n:
            return parts
        out = []
        for i, (ids, sc) in enumerate(parts):
            d_ids, d_sc = self.delta.search(qs[i], k)
            ids, sc = np.concatenate([ids, d_ids]), np.concatenate([sc, d_sc]).astype(np.float32)
            order = np.argsort(-sc, kind="stable")[:k]
            out.append((ids[order], sc[order]))
        return out

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0 or not self.n:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return self.search_many(q.reshape(1, -1), min(k, self.n))[0]

    # ---------------------------------------------------------------- compaction

    def merged(self, index_class):
        """A private, writable copy of the snapshot with the delta applied (for rewriting it):
        costs the index's size in memory for as long as the caller holds it."""
        full = index_class.restore(str(self.file), view=False)
        if self.dead:  # every delta key that the snapshot holds is dead (see add)
            full.remove(np.fromiter(self.dead, np.uint64, len(self.dead)))
        if self.delta.n:
            full.add(self.delta.ids[: self.delta.n].astype(np.uint64), np.ascontiguousarray(self.delta.mat[: self.delta.n]))
        return full
