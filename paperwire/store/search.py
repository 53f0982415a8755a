"""All SQL for the search area: the FTS5 lexical index, its bookkeeping, similar lists.

The library (``paperwire.index``) builds FTS5 match expressions and calls these
functions; nothing else in the search area touches SQL.

Engines: FTS5 (``search_fts``) exists on SQLite only (:func:`~paperwire.store.dialect.fts5_is_index`).
On PostgreSQL the writes below keep the same bookkeeping (``search_docs``, state,
similar lists) without the FTS5 rows, and the match functions are never reached: the
lexical index there is the node's tantivy cache (:mod:`paperwire.index.fastlex`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Sequence

from paperwire.store import statememo
from paperwire.store.dialect import fts5_is_index

_CHUNK = 500


# ---------------------------------------------------------------- state

def get_state(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    """``search_state.<key>``, or ``default`` when it was never set."""
    value = statememo.state_value(conn, key)
    if value is not statememo.MISSING:
        return default if value is None else value
    row = conn.execute("SELECT value FROM search_state WHERE key=?", (key,)).fetchone()
    return row[0] if row else default


def set_state(conn: sqlite3.Connection, key: str, value) -> None:
    conn.execute(
        "INSERT INTO search_state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, str(value)),
    )


def store_rev(conn: sqlite3.Connection) -> int:
    """The store revision (bumped by every import batch)."""
    rev = statememo.meta_value(conn, "rev")
    if rev is not statememo.MISSING:
        return int(rev)
    return int(conn.execute("SELECT value FROM meta WHERE key='rev'").fetchone()[0])


# ---------------------------------------------------------------- indexing

def papers_changed_between(
    conn: sqlite3.Connection, since_rev: int, upto_rev: int, after_id: int, limit: int
) -> list[sqlite3.Row]:
    """Papers written in revisions ``(since_rev, upto_rev]``, by row id, after ``after_id``."""
    return conn.execute(
        "SELECT id, paper_id, title, abstract, authors, categories, content_hash, hidden FROM papers "
        "WHERE rev > ? AND rev <= ? AND id > ? ORDER BY id LIMIT ?",
        (since_rev, upto_rev, after_id, limit),
    ).fetchall()


def papers_changed_between_dated(
    conn: sqlite3.Connection, since_rev: int, upto_rev: int, after_id: int, limit: int
) -> list[tuple]:
    """(id, title, abstract, published-or-feed-date, authors, categories) of papers written
    in ``(since_rev, upto_rev]``."""
    return [tuple(r) for r in conn.execute(
        "SELECT id, title, abstract, COALESCE(published, feed_date), authors, categories FROM papers "
        "WHERE rev > ? AND rev <= ? AND id > ? ORDER BY id LIMIT ?",
        (since_rev, upto_rev, after_id, limit),
    )]


def orphan_docs_since(conn: sqlite3.Connection) -> list[int]:
    """Rowids deleted from the store that a secondary index may still hold: the
    FTS bookkeeping drops them, so this reads the ``deleted`` list kept in state."""
    raw = get_state(conn, "deleted_rowids", "")
    return [int(x) for x in raw.split(",") if x]


def count_changed_between(conn: sqlite3.Connection, since_rev: int, upto_rev: int) -> int:
    return conn.execute(
        "SELECT COUNT(*) FROM papers WHERE rev > ? AND rev <= ?", (since_rev, upto_rev)
    ).fetchone()[0]


def indexed_hashes(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """``{paper: (content_hash, lex_hash)}`` for papers already in the lexical index."""
    out: dict[int, tuple[str, str]] = {}
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        for r in conn.execute(f"SELECT paper, content_hash, lex_hash FROM search_docs WHERE paper IN ({marks})", part):
            out[r[0]] = (r[1], r[2])
    return out


def write_lexical(conn: sqlite3.Connection, docs: Iterable[tuple]) -> int:
    """(Re)index papers. ``docs``: (rowid, title, abstract, authors_text, categories_text,
    content_hash, lex_hash). Call inside a transaction."""
    docs = list(docs)
    if not docs:
        return 0
    if fts5_is_index(conn):
        conn.executemany("DELETE FROM search_fts WHERE rowid=?", [(d[0],) for d in docs])
        conn.executemany(
            "INSERT INTO search_fts (rowid, title, abstract, authors, categories) VALUES (?,?,?,?,?)",
            [d[:5] for d in docs],
        )
    conn.executemany(
        "INSERT INTO search_docs (paper, content_hash, lex_hash) VALUES (?,?,?) "
        "ON CONFLICT(paper) DO UPDATE SET content_hash=excluded.content_hash, lex_hash=excluded.lex_hash",
        [(d[0], d[5], d[6]) for d in docs],
    )
    return len(docs)


def orphan_docs(conn: sqlite3.Connection) -> list[int]:
    """Indexed papers that no longer exist in the store."""
    return [r[0] for r in conn.execute(
        "SELECT d.paper FROM search_docs d LEFT JOIN papers p ON p.id=d.paper WHERE p.id IS NULL"
    )]


def delete_docs(conn: sqlite3.Connection, rowids: Sequence[int]) -> None:
    if fts5_is_index(conn):
        conn.executemany("DELETE FROM search_fts WHERE rowid=?", [(r,) for r in rowids])
    conn.executemany("DELETE FROM search_docs WHERE paper=?", [(r,) for r in rowids])
    conn.executemany("DELETE FROM search_similar WHERE paper=?", [(r,) for r in rowids])


def count_indexed(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM search_docs").fetchone()[0]


def optimize_lexical(conn: sqlite3.Connection) -> None:
    """Merge FTS5 segments (after a large build: fewer segments, faster queries)."""
    if fts5_is_index(conn):
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")


# ---------------------------------------------------------------- querying

def _need_fts5(conn) -> None:
    if not fts5_is_index(conn):
        # A library bug if reached: on PostgreSQL lexical queries go to tantivy.
        raise RuntimeError("FTS5 match queries need a SQLite store; on PostgreSQL the tantivy index answers")


def lexical_top(
    conn: sqlite3.Connection,
    match: str,
    weights: Sequence[float],
    limit: int,
    *,
    published_from: str | None = None,
    published_to: str | None = None,
) -> list[tuple[int, float]]:
    """Best ``limit`` (rowid, bm25 score; higher is better) for an FTS5 match expression.

    ``weights`` are the bm25 column weights for (title, abstract, authors);
    categories weigh 0. Date bounds compare against ``published`` (else ``feed_date``).
    Raises sqlite3.OperationalError on a malformed expression.
    """
    _need_fts5(conn)
    w = [float(x) for x in weights][:3]
    rank = f"bm25(search_fts, {w[0]!r}, {w[1]!r}, {w[2]!r}, 0.0)"
    if published_from or published_to:
        where, params = ["search_fts MATCH ?"], [match]
        _filter_clauses(where, params, (), (), published_from, published_to)
        sql = (f"SELECT f.rowid, {rank} AS r FROM search_fts f JOIN papers p ON p.id=f.rowid "
               f"WHERE {' AND '.join(where)} ORDER BY r LIMIT ?")
        params.append(limit)
    else:
        sql = f"SELECT rowid, {rank} AS r FROM search_fts WHERE search_fts MATCH ? ORDER BY r LIMIT ?"
        params = [match, limit]
    return [(r[0], -r[1]) for r in conn.execute(sql, params)]


def lexical_count(conn: sqlite3.Connection, match: str, cap: int) -> int:
    """Number of matching documents, counted up to ``cap``."""
    _need_fts5(conn)
    return conn.execute(
        "SELECT COUNT(*) FROM (SELECT rowid FROM search_fts WHERE search_fts MATCH ? LIMIT ?)", (match, cap)
    ).fetchone()[0]


def lexical_members(
    conn: sqlite3.Connection,
    match: str,
    rowids: Sequence[int],
    *,
    published_from: str | None = None,
    published_to: str | None = None,
) -> set[int]:
    """Which of ``rowids`` an FTS5 match expression (and date bounds) matches."""
    _need_fts5(conn)
    ids = [int(r) for r in rowids]
    out: set[int] = set()
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        where, params = ["search_fts MATCH ?", f"f.rowid IN ({','.join('?' * len(part))})"], [match, *part]
        join = ""
        if published_from or published_to:
            join = " JOIN papers p ON p.id=f.rowid"
            _filter_clauses(where, params, (), (), published_from, published_to)
        out.update(r[0] for r in conn.execute(f"SELECT f.rowid FROM search_fts f{join} WHERE {' AND '.join(where)}", params))
    return out


def lexical_count_dated(conn: sqlite3.Connection, match: str, cap: int, published_from: str | None,
                        published_to: str | None) -> int:
    """Like :func:`lexical_count`, within publication date bounds."""
    _need_fts5(conn)
    where, params = ["search_fts MATCH ?"], [match]
    _filter_clauses(where, params, (), (), published_from, published_to)
    return conn.execute(
        f"SELECT COUNT(*) FROM (SELECT f.rowid FROM search_fts f JOIN papers p ON p.id=f.rowid "
        f"WHERE {' AND '.join(where)} LIMIT ?)", params + [cap]
    ).fetchone()[0]


def hidden_rowids(conn: sqlite3.Connection) -> frozenset[int]:
    """Rowids of hidden papers (read through the partial index ``papers_hidden``)."""
    return frozenset(r[0] for r in conn.execute("SELECT id FROM papers WHERE hidden=1"))


def paper_meta(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple]:
    """``{rowid: (hidden, published_or_feed_date, votes)}`` for filtering and sorting."""
    out = {}
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        for r in conn.execute(
            f"SELECT id, hidden, COALESCE(published, feed_date), upvotes + local_upvotes FROM papers WHERE id IN ({marks})",
            part,
        ):
            out[r[0]] = (r[1], r[2], r[3])
    return out


def _filter_clauses(where: list, params: list, authors, categories, published_from, published_to) -> None:
    """Append the WHERE clauses (and their parameters) of the structured search filters."""
    for a in authors:
        where.append("EXISTS (SELECT 1 FROM paper_authors a WHERE a.paper=p.id AND (' ' || a.name_norm || ' ') LIKE ?)")
        params.append(f"% {a} %")
    for c in categories:
        where.append("EXISTS (SELECT 1 FROM paper_categories c WHERE c.paper=p.id AND (c.category = ? COLLATE NOCASE OR c.category LIKE ?))")
        params.extend([c, c + ".%"])
    if published_from:
        where.append("COALESCE(p.published, p.feed_date) >= ?")
        params.append(published_from)
    if published_to:
        where.append("COALESCE(p.published, p.feed_date) < ?")
        params.append(published_to)


def filter_rowids(
    conn: sqlite3.Connection,
    rowids: Sequence[int],
    *,
    authors: Sequence[str] = (),
    categories: Sequence[str] = (),
    published_from: str | None = None,
    published_to: str | None = None,
) -> set[int]:
    """The subset of ``rowids`` (visible papers) that pass the structured filters.

    ``authors`` are normalised name fragments (every one must match some author);
    ``categories`` match exactly or as an archive prefix (``cs`` matches ``cs.CL``).
    """
    keep: set[int] = set()
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        where = [f"p.id IN ({','.join('?' * len(part))})", "p.hidden = 0"]
        params: list = list(part)
        _filter_clauses(where, params, authors, categories, published_from, published_to)
        keep.update(r[0] for r in conn.execute(f"SELECT p.id FROM papers p WHERE {' AND '.join(where)}", params))
    return keep


def filtered_recent(
    conn: sqlite3.Connection,
    *,
    authors: Sequence[str] = (),
    categories: Sequence[str] = (),
    published_from: str | None = None,
    published_to: str | None = None,
    order: str = "date",
    limit: int = 20,
    offset: int = 0,
    excluded: str | None = None,
    excluded_rowids: Iterable[int] | None = None,
) -> tuple[list[int], int]:
    """Papers matching only structured filters (no text), newest or most voted first,
    and how many match. ``excluded``: an FTS5 expression (SQLite); papers it matches are
    left out. ``excluded_rowids``: the same as rowids, found by the caller's index (PostgreSQL)."""
    where, params = ["p.hidden = 0"], []
    _filter_clauses(where, params, authors, categories, published_from, published_to)
    if excluded and fts5_is_index(conn):
        where.append("p.id NOT IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)")
        params.append(excluded)
    elif excluded:
        _need_fts5(conn)
    if excluded_rowids is not None:
        skip = sorted({int(r) for r in excluded_rowids})
        if skip and fts5_is_index(conn):
            where.append("p.id NOT IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(skip))
        elif skip:
            where.append("NOT (p.id = ANY(?))")  # one array parameter, however many rowids
            params.append(skip)
    w = " AND ".join(where)
    order_sql = ("p.upvotes + p.local_upvotes DESC, " if order == "votes" else "") + "COALESCE(p.published, p.feed_date) DESC, p.id DESC"
    ids = [r[0] for r in conn.execute(f"SELECT p.id FROM papers p WHERE {w} ORDER BY {order_sql} LIMIT ? OFFSET ?", params + [limit, offset])]
    total = conn.execute(f"SELECT COUNT(*) FROM papers p WHERE {w}", params).fetchone()[0]
    return ids, total


def lexical_text(conn: sqlite3.Connection, rowid: int) -> tuple[str, str] | None:
    """(title, abstract) of a paper, for "more like this" queries."""
    return lexical_texts(conn, [rowid]).get(rowid)


def lexical_texts(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """``{rowid: (title, abstract)}`` of the papers that exist among ``rowids``."""
    out = {}
    ids = [int(r) for r in rowids]
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        for r in conn.execute(f"SELECT id, title, abstract FROM papers WHERE id IN ({marks})", part):
            out[r[0]] = (r[1] or "", r[2] or "")
    return out


# ---------------------------------------------------------------- similar papers

def get_similar(conn: sqlite3.Connection, rowid: int) -> tuple[str, str, list[list]] | None:
    """(content_hash, model, [[rowid, score], ...]) stored for a paper, if any."""
    row = conn.execute("SELECT content_hash, model, neighbours FROM search_similar WHERE paper=?", (rowid,)).fetchone()
    return (row[0], row[1], json.loads(row[2])) if row else None


def get_similar_many(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple[str, str, list]]:
    out = {}
    ids = list(rowids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        for r in conn.execute(f"SELECT paper, content_hash, model, neighbours FROM search_similar WHERE paper IN ({marks})", part):
            out[r[0]] = (r[1], r[2], json.loads(r[3]))
    return out


def put_similar(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, str, list]]) -> None:
    """Store neighbour lists: (paper, content_hash, model, [[rowid, score], ...])."""
    conn.executemany(
        "INSERT INTO search_similar (paper, content_hash, model, neighbours) VALUES (?,?,?,?) "
        "ON CONFLICT(paper) DO UPDATE SET content_hash=excluded.content_hash, model=excluded.model, "
        "neighbours=excluded.neighbours",
        [(p, h, m, json.dumps([[int(a), round(float(b), 5)] for a, b in n])) for p, h, m, n in rows],
    )


def similar_count(conn: sqlite3.Connection, model: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM search_similar WHERE model=?", (model,)).fetchone()[0]


def papers_without_similar(conn: sqlite3.Connection, model: str, limit: int = 1_000_000) -> list[tuple[int, str]]:
    """Visible papers whose neighbour list is missing, stale (text changed) or from another model."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT p.id, p.content_hash FROM papers p LEFT JOIN search_similar s ON s.paper=p.id "
        "WHERE s.paper IS NULL OR s.content_hash != p.content_hash OR s.model != ? ORDER BY p.id LIMIT ?",
        (model, limit),
    )]
