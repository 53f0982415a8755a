"""SQL for the embedding cache: vectors keyed by (model, content_hash).

A paper's vector is the row whose ``content_hash`` equals ``papers.content_hash``, so papers
that share text share a vector, an edited abstract simply misses the cache, and old rows
are garbage until :func:`prune_embeddings`. Vectors are float32 little-endian blobs.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

import numpy as np

from paperwire.store import statememo

_CHUNK = 500  # stays under SQLite's default host-parameter limit


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """Stack blobs into an (n, dim) float32 matrix (one copy)."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    mat = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim)
    return mat.astype(np.float32, copy=True)


def model_dim(conn: sqlite3.Connection, model: str) -> int | None:
    row = conn.execute("SELECT dim FROM embedding_models WHERE model=?", (model,)).fetchone()
    return None if row is None else int(row[0])


def model_seq(conn: sqlite3.Connection, model: str) -> int:
    """The last write sequence number for ``model`` (0 if nothing stored): a cheap change marker."""
    seq = statememo.model_seq(conn, model)
    if seq is not statememo.MISSING:
        return seq
    row = conn.execute("SELECT seq FROM embedding_models WHERE model=?", (model,)).fetchone()
    return 0 if row is None else int(row[0])


def get_embeddings(conn: sqlite3.Connection, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
    """Cached vectors for the given content hashes (missing ones are absent from the dict)."""
    hashes = sorted(set(hashes))
    dim = model_dim(conn, model)
    out: dict[str, np.ndarray] = {}
    if dim is None:
        return out
    for i in range(0, len(hashes), _CHUNK):
        part = hashes[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        for h, blob in conn.execute(
            f"SELECT content_hash, vector FROM embeddings WHERE model=? AND content_hash IN ({marks})", [model, *part]
        ):
            out[h] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    return out


def missing_hashes(conn: sqlite3.Connection, model: str, hashes: Iterable[str]) -> list[str]:
    """The hashes (deduplicated, in first-seen order) that have no vector for ``model`` yet."""
    seen: dict[str, None] = dict.fromkeys(hashes)
    keys = list(seen)
    have: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        part = keys[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        have.update(
            r[0]
            for r in conn.execute(
                f"SELECT content_hash FROM embeddings WHERE model=? AND content_hash IN ({marks})", [model, *part]
            )
        )
    return [h for h in keys if h not in have]


def put_embeddings(conn: sqlite3.Connection, model: str, hashes: Sequence[str], vectors: np.ndarray) -> int:
    """Store vectors (rows of ``vectors``) for ``hashes``; existing (model, hash) rows are kept.

    Runs in the caller's transaction if there is one (else its own). Returns rows inserted.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(hashes) != len(vectors):
        raise ValueError(f"{len(hashes)} hashes but {len(vectors)} vectors")
    if len(hashes) == 0:
        return 0
    dim = int(vectors.shape[1])
    from paperwire.store.db import transaction

    with transaction(conn):
        known = model_dim(conn, model)
        if known is None:
            conn.execute("INSERT INTO embedding_models (model, dim, seq) VALUES (?, ?, 0)", (model, dim))
        elif known != dim:
            raise ValueError(f"model {model!r} stores {known}-d vectors, got {dim}-d")
        start = model_seq(conn, model)
        now = _now()
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO embeddings (model, content_hash, seq, vector, created_at) VALUES (?,?,?,?,?)",
            ((model, h, start + i + 1, to_blob(v), now) for i, (h, v) in enumerate(zip(hashes, vectors))),
        )
        inserted = conn.total_changes - before
        conn.execute("UPDATE embedding_models SET seq=? WHERE model=?", (start + len(hashes), model))
    return inserted


def papers_without_embedding(
    conn: sqlite3.Connection, model: str, *, include_hidden: bool = True, limit: int | None = None
) -> list[sqlite3.Row]:
    """Papers (``id, content_hash, title, abstract``) whose current text has no vector for ``model``."""
    sql = (
        "SELECT p.id, p.content_hash, p.title, p.abstract FROM papers p "
        "WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model=? AND e.content_hash=p.content_hash)"
    )
    if not include_hidden:
        sql += " AND p.hidden=0"
    sql += " ORDER BY p.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql, (model,)).fetchall()


def iter_paper_vectors(
    conn: sqlite3.Connection,
    model: str,
    *,
    include_hidden: bool = False,
    rowids: Sequence[int] | None = None,
    min_seq: int | None = None,
    batch: int = 20000,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rowids int64, vectors float32 (n, dim))`` chunks for papers that have a vector.

    ``rowids`` restricts to those papers; ``min_seq`` to vectors written after that seq.
    """
    dim = model_dim(conn, model)
    if dim is None:
        return
    where = ["e.model=?"]
    params: list = [model]
    if not include_hidden:
        where.append("p.hidden=0")
    if min_seq is not None:
        where.append("e.seq>?")
        params.append(int(min_seq))
    base = (
        "SELECT p.id, e.vector FROM papers p JOIN embeddings e "
        "ON e.model=? AND e.content_hash=p.content_hash WHERE " + " AND ".join(where[1:] or ["1"])
    )
    if rowids is not None:
        # Papers first, each vector by its (model, content_hash) key: with the JOIN above the
        # planner may walk every embedding of the model for a short id list (24 s per 500
        # ids at 100k papers, against 0.1 s this way).
        seq = " AND e.seq>?" if min_seq is not None else ""
        by_id = (
            "SELECT p.id, (SELECT e.vector FROM embeddings e WHERE e.model=? AND e.content_hash=p.content_hash"
            f"{seq}) FROM papers p WHERE " + ("p.hidden=0" if not include_hidden else "1")
        )
        ids = sorted(set(int(r) for r in rowids))
        for i in range(0, len(ids), _CHUNK):
            part = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = [r for r in conn.execute(by_id + f" AND p.id IN ({marks})", [*params, *part]).fetchall()
                    if r[1] is not None]
            if rows:
                yield np.fromiter((r[0] for r in rows), np.int64, len(rows)), from_blobs([r[1] for r in rows], dim)
        return
    cur = conn.execute(base + " ORDER BY p.id", params)
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            break
        yield np.fromiter((r[0] for r in rows), np.int64, len(rows)), from_blobs([r[1] for r in rows], dim)


def paper_vectors(
    conn: sqlite3.Connection, model: str, *, include_hidden: bool = False, rowids: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All ``(rowids, vectors)`` for ``model`` in one go (see :func:`iter_paper_vectors`)."""
    ids, vecs = [], []
    for i, v in iter_paper_vectors(conn, model, include_hidden=include_hidden, rowids=rowids):
        ids.append(i)
        vecs.append(v)
    dim = model_dim(conn, model) or 0
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate(ids), np.concatenate(vecs)


def changed_papers(conn: sqlite3.Connection, since_rev: int) -> list[sqlite3.Row]:
    """Papers (``id, content_hash, hidden``) written after store revision ``since_rev``."""
    return conn.execute("SELECT id, content_hash, hidden FROM papers WHERE rev>?", (int(since_rev),)).fetchall()


def paper_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]


def embedding_count(conn: sqlite3.Connection, model: str | None = None) -> int:
    if model is None:
        return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM embeddings WHERE model=?", (model,)).fetchone()[0]


def embedding_models(conn: sqlite3.Connection) -> list[dict]:
    """``[{model, dim, seq, count}]`` for every model with stored vectors."""
    return [
        dict(r)
        for r in conn.execute(
            "SELECT m.model, m.dim, m.seq, (SELECT COUNT(*) FROM embeddings e WHERE e.model=m.model) AS count "
            "FROM embedding_models m ORDER BY m.model"
        )
    ]


def prune_embeddings(conn: sqlite3.Connection, model: str | None = None) -> int:
    """Delete vectors whose text no paper has any more; returns rows deleted."""
    return prune_unreferenced(conn, "embeddings", model)


def prune_unreferenced(conn, table: str, model: str | None = None) -> int:
    """Delete the rows of a per-(model, content_hash) table (``embeddings``,
    ``passage_vectors``) whose text no paper has any more; returns rows deleted."""
    from paperwire.store.db import transaction

    if table not in ("embeddings", "passage_vectors"):
        raise ValueError(f"not a vector table: {table!r}")
    sql = f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM papers p WHERE p.content_hash={table}.content_hash)"
    params: tuple = ()
    if model is not None:
        sql += " AND model=?"
        params = (model,)
    with transaction(conn):
        return conn.execute(sql, params).rowcount


def index_state(conn: sqlite3.Connection, model: str) -> tuple[int, int, int, int]:
    """(store rev, newest embedding seq of ``model``, paper count, max paper rowid):
    what a vector index compares to know whether it is stale."""
    row = conn.execute(
        "SELECT (SELECT value FROM meta WHERE key='rev'), "
        "(SELECT COALESCE(MAX(seq), 0) FROM embedding_models WHERE model=?), "
        "(SELECT COUNT(*) FROM papers), (SELECT COALESCE(MAX(id), 0) FROM papers)",
        (model,),
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
