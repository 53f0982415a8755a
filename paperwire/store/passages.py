"""SQL for passage vectors: each paper's sentences embedded, keyed by (model, content_hash).

Like the embedding cache (:mod:`paperwire.store.embeddings`), a paper's passages are the row
whose ``content_hash`` equals ``papers.content_hash``. A row packs all of a paper's passage
vectors as int8 with one float32 scale per passage (:func:`pack`), a quarter of float32's
size: search reads them only for the few dozen candidates it re-scores, never all at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Sequence

import numpy as np

_CHUNK = 500  # stays under SQLite's default host-parameter limit


def pack(vectors: np.ndarray) -> bytes:
    """``n`` float32 scales, then the ``(n, dim)`` vectors as int8 (each row / its scale)."""
    v = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(v).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(v / scale[:, None]), -127, 127).astype(np.int8)
    return scale.astype("<f4").tobytes() + q.tobytes()


def unpack(blob: bytes, n: int, dim: int) -> np.ndarray:
    """The ``(n, dim)`` float32 vectors of :func:`pack` (each within 1/254 of its largest
    component; cosines move by ~1e-3, well under the differences that rank papers)."""
    raw = memoryview(blob)
    scale = np.frombuffer(raw[: 4 * n], dtype="<f4")
    q = np.frombuffer(raw[4 * n : 4 * n + n * dim], dtype=np.int8).reshape(n, dim)
    return q.astype(np.float32) * scale[:, None]


def put_passages(conn, model: str, items: Sequence[tuple[str, np.ndarray]]) -> int:
    """Store ``(content_hash, (n, dim) vectors)`` pairs; existing rows are kept. Runs in the
    caller's transaction if there is one (else its own). Returns rows inserted."""
    from paperwire.store.db import transaction

    if not items:
        return 0
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = [(model, h, int(len(v)), int(np.asarray(v).shape[1]), pack(v), now) for h, v in items if len(v)]
    with transaction(conn):
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO passage_vectors (model, content_hash, n, dim, vectors, created_at) VALUES (?,?,?,?,?,?)",
            rows,
        )
        return conn.total_changes - before


def missing_passages(conn, model: str, hashes: Iterable[str]) -> list[str]:
    """The hashes (deduplicated, in first-seen order) with no passage vectors for ``model``."""
    keys = list(dict.fromkeys(hashes))
    have: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        part = keys[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        have.update(r[0] for r in conn.execute(
            f"SELECT content_hash FROM passage_vectors WHERE model=? AND content_hash IN ({marks})", [model, *part]))
    return [h for h in keys if h not in have]


def passage_rows(conn, model: str, rowids: Sequence[int]) -> list[tuple[int, int, int, bytes]]:
    """``(paper rowid, n, dim, packed vectors)`` for those of ``rowids`` that have passages."""
    ids = sorted({int(r) for r in rowids})
    out: list[tuple[int, int, int, bytes]] = []
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        # Papers first (by id), then each one's row by its primary key.
        out += [(int(r), int(n), int(d), b) for r, n, d, b in conn.execute(
            "SELECT p.id, v.n, v.dim, v.vectors FROM papers p CROSS JOIN passage_vectors v "
            f"WHERE p.id IN ({marks}) AND v.model=? AND v.content_hash=p.content_hash", [*part, model])]
    return out


def passages_by_rowid(conn, model: str, rowids: Sequence[int]) -> dict[int, np.ndarray]:
    """``{paper rowid: (n, dim) float32 passage vectors}`` for those of ``rowids`` that have them."""
    return {r: unpack(b, n, d) for r, n, d, b in passage_rows(conn, model, rowids)}


def passage_stats(conn, model: str) -> dict:
    """``{papers, passages, bytes}`` stored for ``model``."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(vectors)), 0) FROM passage_vectors WHERE model=?",
        (model,),
    ).fetchone()
    return {"papers": int(row[0]), "passages": int(row[1]), "bytes": int(row[2])}


def prune_passages(conn, model: str | None = None) -> int:
    """Delete passage vectors whose text no paper has any more; returns rows deleted."""
    from paperwire.store.embeddings import prune_unreferenced

    return prune_unreferenced(conn, "passage_vectors", model)
