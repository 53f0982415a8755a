"""SQL for the search vocabulary (``search_terms``: word -> document frequency).

The library (:mod:`paperwire.index.spell`) tokenises text and computes the deltas; this
module only reads and writes rows.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Mapping, Sequence

from paperwire.store.dialect import fts5_is_index

_CHUNK = 500


def _texts_sql(conn) -> str:
    """Where the indexed (rowid, title, abstract) are read: FTS5's own copy on SQLite; on
    PostgreSQL (no FTS5) the papers that ``search_docs`` says are indexed, with their
    current text (so callers treat a changed paper there as a reason to recount)."""
    if fts5_is_index(conn):
        return "SELECT rowid, title, abstract FROM search_fts"
    return "SELECT p.id AS rowid, p.title, p.abstract FROM papers p JOIN search_docs d ON d.paper = p.id"


def texts_kept(conn) -> bool:
    """Whether the index keeps the text each paper was indexed with (FTS5 does), so a
    changed paper's vocabulary delta can be computed; else a change means a recount."""
    return fts5_is_index(conn)


def indexed_texts(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """``{rowid: (title, abstract)}`` as currently held by the lexical index (the text a
    paper was indexed with, which may differ from ``papers`` after an update)."""
    out: dict[int, tuple[str, str]] = {}
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        q = ",".join("?" * len(part))
        col = "rowid" if fts5_is_index(conn) else "p.id"
        for r, t, a in conn.execute(f"{_texts_sql(conn)} WHERE {col} IN ({q})", part):
            out[int(r)] = (t or "", a or "")
    return out


def iter_indexed_texts(conn: sqlite3.Connection, batch: int = 5000) -> Iterable[list[tuple[str, str]]]:
    """Every indexed (title, abstract), in rowid batches (a full vocabulary rebuild)."""
    after = -1
    while True:
        col = "rowid" if fts5_is_index(conn) else "p.id"
        rows = conn.execute(
            f"{_texts_sql(conn)} WHERE {col} > ? ORDER BY {col} LIMIT ?", (after, batch)
        ).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield [(t or "", a or "") for _, t, a in rows]


def bump_terms(conn: sqlite3.Connection, delta: Mapping[str, int]) -> None:
    """Add ``delta[term]`` to each term's document frequency; terms reaching 0 go.
    Call inside a transaction."""
    items = [(t, int(d)) for t, d in delta.items() if d]
    if not items:
        return
    conn.executemany(
        "INSERT INTO search_terms (term, df) VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = search_terms.df + excluded.df",
        items,
    )
    if any(d < 0 for _, d in items):
        conn.executemany("DELETE FROM search_terms WHERE term = ? AND df <= 0", [(t,) for t, d in items if d < 0])


def clear_terms(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM search_terms")


def terms(conn: sqlite3.Connection, min_df: int = 1) -> list[tuple[str, int]]:
    """All (term, df) with ``df >= min_df``."""
    return [(t, int(d)) for t, d in conn.execute("SELECT term, df FROM search_terms WHERE df >= ?", (min_df,))]


def term_dfs(conn: sqlite3.Connection, words: Sequence[str]) -> dict[str, int]:
    """``{word: df}`` of the given words that are in the vocabulary."""
    words = list(dict.fromkeys(words))
    if not words:
        return {}
    q = ",".join("?" * len(words))
    return {t: int(d) for t, d in conn.execute(f"SELECT term, df FROM search_terms WHERE term IN ({q})", words)}


def term_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM search_terms").fetchone()[0])
