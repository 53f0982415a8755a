"""All SQL that reads and writes papers. Nothing outside ``paperwire.store``
writes SQL against these tables; a PostgreSQL port replaces this module."""

from __future__ import annotations

import json
import operator
import sqlite3
from datetime import datetime, timezone
from itertools import count, repeat
from typing import Callable, Iterable, Iterator, Sequence

from paperwire.store import statememo
from paperwire.store.db import page_cache, temp_files, transaction
from paperwire.store.meta import get_meta, set_meta

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
    """The store revision (pinned for the request when :func:`statememo.pinned` is on)."""
    rev = statememo.meta_value(conn, "rev")
    if rev is not statememo.MISSING:
        return int(rev)
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
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store import pgpapers

        return pgpapers.find_candidates(conn, arxiv_ids, paper_ids, title_norms)  # one array per key set
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


# Rows handed to insert/update carry the JSON columns ready-made (the importer serialises
# them once, often in its parser process) and the author keys for paper_authors.
_ROW_KEYS = tuple({"authors": "authors_json", "categories": "categories_json"}.get(c, c) for c in PAPER_COLUMNS)
_insert_values = operator.itemgetter(*_ROW_KEYS)
_update_values = operator.itemgetter(*(k for k in _ROW_KEYS if k not in ("id", "first_seen", "source")), "id")


def insert_papers(conn: sqlite3.Connection, rows: list[dict]) -> None:
    """Insert new papers (with their ``id`` already assigned) and their authors/categories.

    A row has the :data:`PAPER_COLUMNS` keys, except that the ``authors`` and
    ``categories`` lists go with their JSON in ``authors_json`` / ``categories_json``,
    plus ``author_norms`` (the normalised author names, in order).
    """
    if not rows:
        return
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store.dialect import copy_rows

        copy_rows(conn, "papers", PAPER_COLUMNS, map(_insert_values, rows))  # COPY: the bulk path
    else:
        conn.executemany(_INSERT, [_insert_values(r) for r in rows])
    _write_children(conn, rows, replace=False)


def update_papers(conn: sqlite3.Connection, rows: list[dict]) -> None:
    """Overwrite mergeable fields of existing papers and rewrite their authors/categories
    (rows as for :func:`insert_papers`)."""
    if not rows:
        return
    conn.executemany(_UPDATE, [_update_values(r) for r in rows])
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
        rowid = r["id"]
        authors.extend(zip(repeat(rowid), count(), r["authors"], r["author_norms"]))
        cats.extend(zip(repeat(rowid), count(), r["categories"]))
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store.dialect import copy_rows

        copy_rows(conn, "paper_authors", ("paper", "position", "name", "name_norm"), authors)
        copy_rows(conn, "paper_categories", ("paper", "position", "category"), cats)
        return
    conn.executemany("INSERT INTO paper_authors (paper, position, name, name_norm) VALUES (?,?,?,?)", authors)
    conn.executemany("INSERT INTO paper_categories (paper, position, category) VALUES (?,?,?)", cats)


# ---------------------------------------------------------------- bulk loads

# meta key holding [[name, CREATE INDEX sql], ...] of the indexes a bulk load dropped
# (on PostgreSQL also the child tables' foreign keys: store/pgpapers.py)
BULK_LOAD_KEY = "bulk_load_indexes"
# Page cache during a bulk load and its index builds (SQLite also sizes sort chunks by it).
BULK_CACHE_KIB = 16 * 1024
_BULK_TABLES = ("papers", "paper_authors", "paper_categories")


def _secondary_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, sql) of the paper tables' indexes that no constraint or dedup lookup needs.

    Unique indexes stay (they enforce paper_id / arxiv_id identity and serve the
    id lookups), so do the primary keys; everything else, whichever migration
    created it, is rebuilt from its own SQL. On PostgreSQL the foreign keys of
    the child tables go too (:func:`paperwire.store.pgpapers.secondary_objects`).
    """
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store import pgpapers

        return pgpapers.secondary_objects(conn, _BULK_TABLES)  # and the child tables' foreign keys
    rows = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({','.join('?' * len(_BULK_TABLES))}) ORDER BY name", _BULK_TABLES
    ).fetchall()
    return [(n, q) for n, q in rows if not q.lstrip().upper().startswith("CREATE UNIQUE")]


def begin_bulk_load(conn: sqlite3.Connection) -> bool:
    """Drop the secondary indexes of an empty store for a bulk load; call in a transaction.

    Returns False (and does nothing) if the store has papers or a bulk load is
    pending. The dropped indexes are recorded in the same transaction, so they are
    either still there or listed for :func:`finish_bulk_load`, whatever kills us.
    """
    pg = getattr(conn, "dialect", "sqlite") == "postgresql"
    if pg:
        from paperwire.store import pgpapers

        pgpapers.lock_papers(conn)  # SQLite's BEGIN IMMEDIATE: one importer decides at a time
    if conn.execute("SELECT 1 FROM papers LIMIT 1").fetchone() or get_meta(conn, BULK_LOAD_KEY) is not None:
        return False
    indexes = _secondary_indexes(conn)
    set_meta(conn, BULK_LOAD_KEY, json.dumps(indexes))
    for name, _ in indexes:
        if pg:
            pgpapers.drop_object(conn, name)
        else:
            conn.execute(f'DROP INDEX "{name}"')
    return True


def bulk_load_pending(conn: sqlite3.Connection) -> bool:
    """Whether a bulk load dropped indexes that are not rebuilt yet (running or killed)."""
    return get_meta(conn, BULK_LOAD_KEY) is not None


def _sqlite_index_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,)).fetchone() is not None


def finish_bulk_load(conn: sqlite3.Connection, *, on_built: Callable[[str], None] | None = None) -> list[str]:
    """Rebuild whatever indexes a bulk load dropped and are still missing; returns their names.

    Each index is built and committed on its own (inside the caller's transaction
    if there is one) and the record of the bulk load goes last, so a process killed
    midway leaves the rest for the next call. ``on_built(name)`` runs after each
    build, before its commit. Sorts spill to temporary files in chunks the size of
    a small page cache, so a big index does not grow the process.
    """
    raw = get_meta(conn, BULK_LOAD_KEY)
    if raw is None:
        return []
    built = []
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store import pgpapers

        exists, build = pgpapers.object_exists, pgpapers.rebuild
    else:
        exists, build = _sqlite_index_exists, lambda c, ddl: c.execute(ddl)
    with temp_files(conn), page_cache(conn, BULK_CACHE_KIB):
        for name, ddl in json.loads(raw):
            with transaction(conn):
                if not exists(conn, name):
                    build(conn, ddl)
                    built.append(name)
                    if on_built:
                        on_built(name)
    with transaction(conn):
        conn.execute("DELETE FROM meta WHERE key=?", (BULK_LOAD_KEY,))
    return built


# ---------------------------------------------------------------- reading

def row_to_paper(row: sqlite3.Row) -> dict:
    """A paper row as a plain dict with JSON columns decoded."""
    d = dict(zip(row.keys(), row))  # 4x faster than dict(row), which looks up every key by name
    d.pop("rank_jd", None)  # the trending query's generated column (m0602), no field of a paper
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
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from paperwire.store import pgpapers

        rows = pgpapers.papers_by_rowid(conn, rowids)  # one array parameter: one prepared statement
    else:
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


def _julian_day(iso: str) -> float:
    """SQLite's ``julianday()`` of an ISO timestamp (UTC when it has no offset), computed once
    here: as a parameter inside the query PostgreSQL would parse it again for every row."""
    when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() / 86400.0 + 2440587.5


def trending_rows(conn: sqlite3.Connection, *, now: str, offset_hours: float, gravity: float,
                  since: str, until: str, limit: int, skip: int) -> list[sqlite3.Row]:
    """Visible papers filed between ``since`` and ``until`` ranked by the trending score
    (see :mod:`paperwire.rank`); rows carry ``votes`` and ``score``.

    The ranking sorts ids and scores only; whole rows are read for the page alone (a day
    holds ~1,100 papers on arXiv, a page 30). ``rank_jd`` is the reference time as a Julian
    day, a generated column (``m0602_rank_time``): stored on PostgreSQL, so the score is
    arithmetic there instead of a timestamp parse per row."""
    return conn.execute(
        """
        SELECT p.*, r.votes, r.score
        FROM (SELECT id, (upvotes + local_upvotes) AS votes,
                     (upvotes + local_upvotes + 1.0) /
                     pow(max((:now_jd - rank_jd) * 24.0, 0.0)
                         + :offset, :gravity) AS score
              FROM papers
              WHERE hidden = 0 AND feed_date >= :since AND feed_date <= :until
              ORDER BY score DESC, id DESC
              LIMIT :limit OFFSET :skip) AS r
        JOIN papers p ON p.id = r.id
        ORDER BY r.score DESC, r.id DESC
        """,
        {"now_jd": _julian_day(now), "offset": offset_hours, "gravity": gravity, "since": since, "until": until,
         "limit": limit, "skip": skip},
    ).fetchall()
