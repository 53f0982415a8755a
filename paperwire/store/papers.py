"""All SQL that reads and writes papers. Nothing outside ``paperwire.store``
writes SQL against these tables; a PostgreSQL port replaces this module."""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Iterator, Sequence

from paperwire.model import normalize_title

# Columns written by imports, in the order of the INSERT below.
PAPER_COLUMNS = (
    "id", "paper_id", "id_kind", "arxiv_id", "version", "title", "title_norm", "abstract",
    "authors", "categories", "primary_category", "published", "updated", "listed_at",
    "feed_date", "doi", "journal_ref", "comments", "license", "abs_url", "pdf_url",
    "code_url", "project_url", "source", "first_seen", "upvotes", "submitted_by",
    "num_comments", "content_hash", "record_hash", "rev", "meta_rank",
)
_INSERT = f"INSERT INTO papers ({', '.join(PAPER_COLUMNS)}) VALUES ({', '.join('?' * len(PAPER_COLUMNS))})"
_UPDATE_COLUMNS = tuple(c for c in PAPER_COLUMNS if c not in ("id", "first_seen", "source"))
_UPDATE = f"UPDATE papers SET {', '.join(c + '=?' for c in _UPDATE_COLUMNS)} WHERE id=?"

_CHUNK = 500  # stays under SQLite's default host-parameter limit


def next_rev(conn: sqlite3.Connection) -> int:
    """Bump and return the store revision; call inside the write transaction."""
    row = conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='rev' RETURNING value").fetchone()
    return int(row[0])


def current_rev(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key='rev'").fetchone()[0])


def max_paper_rowid(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM papers").fetchone()[0]


def _in_chunks(conn: sqlite3.Connection, sql: str, values: Sequence) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = []
    values = list(values)
    for i in range(0, len(values), _CHUNK):
        part = values[i : i + _CHUNK]
        rows.extend(conn.execute(sql.format(marks=",".join("?" * len(part))), part))
    return rows


def find_candidates(
    conn: sqlite3.Connection,
    arxiv_ids: Iterable[str],
    paper_ids: Iterable[str],
    title_norms: Iterable[str],
) -> list[sqlite3.Row]:
    """Existing papers that may be the same as incoming records (by any identity key)."""
    rows: dict[int, sqlite3.Row] = {}
    for sql, keys in (
        ("SELECT * FROM papers WHERE arxiv_id IN ({marks})", set(arxiv_ids)),
        ("SELECT * FROM papers WHERE paper_id IN ({marks})", set(paper_ids)),
        ("SELECT * FROM papers WHERE title_norm IN ({marks})", set(title_norms)),
    ):
        if keys:
            for r in _in_chunks(conn, sql, sorted(keys)):
                rows[r["id"]] = r
    return list(rows.values())


def insert_papers(conn: sqlite3.Connection, rows: list[dict]) -> None:
    """Insert new papers (with their ``id`` already assigned) and their authors/categories."""
    if not rows:
        return
    conn.executemany(_INSERT, [tuple(r[c] for c in PAPER_COLUMNS) for r in rows])
    _write_children(conn, rows, replace=False)


def update_papers(conn: sqlite3.Connection, rows: list[dict]) -> None:
    """Overwrite mergeable fields of existing papers and rewrite their authors/categories."""
    if not rows:
        return
    conn.executemany(_UPDATE, [tuple(r[c] for c in _UPDATE_COLUMNS) + (r["id"],) for r in rows])
    _write_children(conn, rows, replace=True)


def add_alias(conn: sqlite3.Connection, alias: str, paper_rowid: int) -> None:
    conn.execute("INSERT OR IGNORE INTO paper_aliases (alias, paper) VALUES (?, ?)", (alias, paper_rowid))


def _write_children(conn: sqlite3.Connection, rows: list[dict], *, replace: bool) -> None:
    if replace:
        ids = [(r["id"],) for r in rows]
        conn.executemany("DELETE FROM paper_authors WHERE paper=?", ids)
        conn.executemany("DELETE FROM paper_categories WHERE paper=?", ids)
    authors, cats = [], []
    for r in rows:
        for pos, name in enumerate(json.loads(r["authors"])):
            authors.append((r["id"], pos, name, normalize_title(name)))  # same rule as titles
        for pos, cat in enumerate(json.loads(r["categories"])):
            cats.append((r["id"], pos, cat))
    conn.executemany("INSERT INTO paper_authors (paper, position, name, name_norm) VALUES (?,?,?,?)", authors)
    conn.executemany("INSERT INTO paper_categories (paper, position, category) VALUES (?,?,?)", cats)


# ---------------------------------------------------------------- reading

def row_to_paper(row: sqlite3.Row) -> dict:
    """A paper row as a plain dict with JSON columns decoded."""
    d = dict(row)
    d["authors"] = json.loads(d["authors"])
    d["categories"] = json.loads(d["categories"])
    return d


def get_paper(conn: sqlite3.Connection, ident: str, *, include_hidden: bool = True) -> dict | None:
    """Look a paper up by public id, arXiv id (with or without version) or alias."""
    from paperwire.model import parse_arxiv_id

    ident = ident.strip()
    row = conn.execute("SELECT * FROM papers WHERE paper_id=?", (ident,)).fetchone()
    if row is None:
        parsed = parse_arxiv_id(ident)
        if parsed:
            row = conn.execute("SELECT * FROM papers WHERE arxiv_id=?", (parsed[0],)).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT p.* FROM paper_aliases a JOIN papers p ON p.id=a.paper WHERE a.alias=?", (ident,)
        ).fetchone()
    if row is None or (row["hidden"] and not include_hidden):
        return None
    return row_to_paper(row)


def get_papers_by_rowid(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, dict]:
    """Papers keyed by internal row id (for search hits and similar lists)."""
    rows = _in_chunks(conn, "SELECT * FROM papers WHERE id IN ({marks})", list(rowids))
    return {r["id"]: row_to_paper(r) for r in rows}


def iter_papers(conn: sqlite3.Connection, paper_ids: Sequence[str] | None = None) -> Iterator[dict]:
    """All papers in row order, or the given ones (unknown ids raise KeyError)."""
    if paper_ids:
        for pid in paper_ids:
            p = get_paper(conn, pid)
            if p is None:
                raise KeyError(pid)
            yield p
        return
    last = 0
    while True:
        rows = conn.execute("SELECT * FROM papers WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall()
        if not rows:
            return
        for r in rows:
            yield row_to_paper(r)
        last = rows[-1]["id"]


def newest_papers(conn: sqlite3.Connection, limit: int = 10) -> list[dict]:
    """Most recent papers by feed date, then by when we first saw them."""
    rows = conn.execute(
        "SELECT * FROM papers WHERE hidden=0 ORDER BY feed_date DESC, published DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [row_to_paper(r) for r in rows]


def all_paper_rowids(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM papers")]


def count_papers(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]


def store_stats(conn: sqlite3.Connection) -> dict:
    """Totals for ``paperwire stats``."""
    total = count_papers(conn)
    with_arxiv = conn.execute("SELECT COUNT(*) FROM papers WHERE arxiv_id IS NOT NULL").fetchone()[0]
    by_source = dict(conn.execute("SELECT source, COUNT(*) FROM papers GROUP BY source ORDER BY 2 DESC").fetchall())
    by_year = dict(
        conn.execute(
            "SELECT COALESCE(substr(published, 1, 4), 'unknown') AS y, COUNT(*) FROM papers GROUP BY y ORDER BY y"
        ).fetchall()
    )
    return {
        "papers": total,
        "with_arxiv_id": with_arxiv,
        "hidden": conn.execute("SELECT COUNT(*) FROM papers WHERE hidden=1").fetchone()[0],
        "by_source": by_source,
        "by_year": by_year,
        "rev": current_rev(conn),
    }


def trending_rows(conn: sqlite3.Connection, *, now: str, offset_hours: float, gravity: float,
                  since: str, until: str, limit: int, skip: int) -> list[sqlite3.Row]:
    """Visible papers filed between ``since`` and ``until`` ranked by the trending score
    (see :mod:`paperwire.rank`); rows carry ``votes`` and ``score``."""
    return conn.execute(
        """
        SELECT *, (upvotes + local_upvotes) AS votes,
               (upvotes + local_upvotes + 1.0) /
               pow(max((julianday(:now) - julianday(COALESCE(listed_at, published, first_seen))) * 24.0, 0.0)
                   + :offset, :gravity) AS score
        FROM papers
        WHERE hidden = 0 AND feed_date >= :since AND feed_date <= :until
        ORDER BY score DESC, id DESC
        LIMIT :limit OFFSET :skip
        """,
        {"now": now, "offset": offset_hours, "gravity": gravity, "since": since, "until": until,
         "limit": limit, "skip": skip},
    ).fetchall()
