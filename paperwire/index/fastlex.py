"""Fast ranked text search with tantivy (optional): the hot path of lexical search.

FTS5 (``search_fts``) is the index of record: it lives in the database, is updated in
the same transactions and serves everything (phrases, exclusions, author/category
filters). But FTS5 scores *every* document matching any query word with bm25() (about
6 µs each), so a natural-language query over 100k+ papers takes tens to hundreds of ms.
tantivy (Rust, block-max WAND top-k) answers the same bag-of-words BM25 query in well
under a millisecond (BENCHMARKS.md), so plain-word queries (optionally with a
date range) use it when it is installed and caught up; anything else, or no tantivy,
falls back to FTS5 with identical semantics.

The tantivy index is a rebuildable cache in ``<db>.tantivy/``. ``search_state`` records
the store revision it reflects (``tantivy_rev``); updates delete-then-add by rowid, so a
killed run is redone safely by the next one.

On PostgreSQL there is no FTS5: tantivy *is* the lexical index, one replica per node in
the node's cache folder (:func:`paperwire.store.meta.cache_base`). It follows the
store's change log directly: its directory records the store revision it reflects, and
:func:`fast_ready` catches it up to ``meta.rev`` (papers written since) before answering,
so a paper committed through any node or worker is searchable on every node at its next
search. Nothing per node is written to the shared store.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import sqlite3
import sys
import threading
from pathlib import Path

from paperwire.index.query import category_tokens
from paperwire.model import normalize_title
from paperwire.store import search as sql
from paperwire.store.dialect import fts5_is_index
from paperwire.store.meta import database_file

PIP_FAST = "pip install tantivy  (or: pip install 'paperwire[fast]')"
# The title counts twice inside "text" (BM25F-style: its terms' frequencies doubled under one
# saturation and length norm). On SciFact train, with passage scoring, this beat the old extra
# "title" field at boost 0.2 (0.7494 vs 0.7486 nDCG@10; test 0.7448 vs 0.7377) and a query of
# one field is cheaper (lexical stage 186 -> 128 us). BENCHMARKS.md, levers round 2.
TITLE_REPEAT = 2
TITLE_BOOST = 0.0  # extra weight of the separate "title" field (kept for bench/search_tune.py)
COMMIT_EVERY = 100_000
_SCHEMA_VERSION = "4"  # 4: the title twice in "text"

_LOCK = threading.Lock()
_OPEN: dict[str, "FastIndex"] = {}
_CATCH_UP = threading.Lock()  # one catch-up per process; other processes: tantivy's writer lock


def available() -> bool:
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


def index_dir(conn: sqlite3.Connection) -> Path | None:
    """``<db file>.tantivy/`` beside the database; None for in-memory databases."""
    path = database_file(conn)
    if not path:
        return None
    p = Path(path)
    return p.with_name(p.name + ".tantivy")


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("rowid", stored=True, indexed=True, fast=True)
    sb.add_integer_field("day", stored=False, indexed=True, fast=True)  # YYYYMMDD
    sb.add_text_field("text", stored=False, tokenizer_name="en_stem")   # title x TITLE_REPEAT + abstract
    sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("authors", stored=False, tokenizer_name="default")  # accent-folded names
    sb.add_text_field("cats", stored=False, tokenizer_name="default")     # "cs cscl cslg"
    return sb.build()


def _day(date: str | None) -> int:
    if not date or len(date) < 10:
        return 0
    try:
        return int(date[:4]) * 10000 + int(date[5:7]) * 100 + int(date[8:10])
    except ValueError:
        return 0


class FastIndex:
    """One tantivy index directory, opened once per process."""

    def __init__(self, path: Path):
        import tantivy

        self.path = path
        marker = path / "paperwire-schema"
        if path.exists() and (not marker.exists() or marker.read_text() != _SCHEMA_VERSION):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        marker.write_text(_SCHEMA_VERSION)
        self.rev = -1
        # The match count of this thread's last search: tantivy counts every match while it
        # collects the top k, so the search's count serves the count() that follows it (the
        # result total), instead of a second pass over the postings (~1.3 ms at 3M papers).
        self._counted = threading.local()

    def stored_rev(self) -> int:
        """The store revision this directory was last committed at (0: none)."""
        try:
            return int((self.path / "paperwire-rev").read_text())
        except (OSError, ValueError):
            return 0

    def write_rev(self, rev: int) -> None:
        tmp = self.path / "paperwire-rev.tmp"
        tmp.write_text(str(rev))
        tmp.replace(self.path / "paperwire-rev")

    def clear(self) -> None:
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        writer.delete_all_documents()
        writer.commit()
        writer.wait_merging_threads()
        self.write_rev(0)

    def reload_if(self, rev: int) -> None:
        if rev != self.rev:
            self.index.reload()
            self.rev = rev

    def write(self, docs, deletes=(), *, progress=None) -> int:
        """Delete-then-add docs ``(rowid, title, abstract, date, authors_json, categories_json)``;
        rowids in ``deletes`` go."""
        import tantivy

        writer = self.index.writer(heap_size=200_000_000, num_threads=1)
        n = 0
        try:
            for rowid in deletes:
                writer.delete_documents_by_term("rowid", int(rowid))
            for rowid, title, abstract, date, authors, cats in docs:
                writer.delete_documents_by_term("rowid", int(rowid))
                writer.add_document(tantivy.Document(
                    rowid=int(rowid), day=_day(date), title=title or "", text=[title or ""] * TITLE_REPEAT + [abstract or ""],
                    authors="\n".join(normalize_title(a) for a in json.loads(authors or "[]")),
                    cats=category_tokens(json.loads(cats or "[]"))))
                n += 1
                if n % COMMIT_EVERY == 0:
                    writer.commit()
                if progress:
                    progress(1)
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            try:
                writer.rollback()
            except Exception:
                pass
            raise
        return n

    def _query(self, words, *, date_from=None, date_to=None, title_boost=TITLE_BOOST, phrases=(), excluded=(),
               authors=(), categories=()):
        import tantivy

        # Every token is a [^\W_]+ run in lower case: nothing the query parser reads as syntax.
        # Same semantics as the FTS5 expression: with a phrase, words only add to the score;
        # without one, at least one word must match (even next to author:/cat: filters).
        if words and not phrases and (excluded or authors or categories):
            parts = ["+(" + " ".join(words) + ")"]
        else:
            parts = list(words)
        parts += ['+"' + " ".join(p) + '"' for p in phrases]
        # tantivy refuses a query of exclusions only ("Only excluding terms given"): with
        # nothing else to match, they become a MustNot clause beside the date range or all docs.
        exclude_only = bool(excluded) and not (words or phrases or authors or categories)
        if not exclude_only:
            parts += ['-"' + e + '"' for e in excluded]
        for a in authors:
            parts += [f"+authors:{t}" for t in normalize_title(a).split()]
        for c in categories:
            parts.append("+cats:" + category_tokens([c]).split()[-1])
        clauses = []
        if parts:
            fields, boosts = (["text", "title"], {"title": title_boost}) if title_boost else (["text"], {})
            clauses.append(self.index.parse_query(" ".join(parts), fields, field_boosts=boosts))
        if date_from or date_to:
            lo = _day(date_from) if date_from else None
            hi = _day(date_to) if date_to else None
            if hi is not None:
                hi -= 1  # exclusive bound; YYYYMMDD - 1 is still below every later day
            clauses.append(tantivy.Query.range_query(self.schema, "day", tantivy.FieldType.Integer, lo, hi))
        if exclude_only:
            unwanted = self.index.parse_query(" ".join('"' + e + '"' for e in excluded), ["text", "title"])
            must = [(tantivy.Occur.Must, q) for q in clauses or [tantivy.Query.all_query()]]
            return tantivy.Query.boolean_query(must + [(tantivy.Occur.MustNot, unwanted)])
        if not clauses:
            return None
        if len(clauses) == 1:
            return clauses[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in clauses])

    def search(self, words: list[str], k: int, *, order: str = "relevance", offset: int = 0, **kw) -> list[tuple[int, float]]:
        """Top-k (rowid, score) for already tokenised, lower-case ``words`` (BM25, any may
        match). Keywords: ``phrases`` must match, ``excluded`` must not, ``authors`` /
        ``categories`` / ``date_from`` / ``date_to`` filter. ``order="date"``: newest first."""
        import tantivy

        query = self._query(words, **kw)
        if query is None or k <= 0:
            return []
        searcher = self.index.searcher()
        if order == "date":
            found = searcher.search(query, k, count=True, offset=offset, order_by_field="day", order=tantivy.Order.Desc)
            self._counted.last = (_count_key(words, kw), int(found.count))
            return [(rowid, 0.0) for rowid in _rowids(searcher, [addr for _, addr in found.hits])]
        found = searcher.search(query, k, count=True, offset=offset)
        self._counted.last = (_count_key(words, kw), int(found.count))
        hits = found.hits
        return list(zip(_rowids(searcher, [addr for _, addr in hits]), (float(score) for score, _ in hits)))

    def members(self, words, rowids, **kw) -> set[int]:
        """Which of ``rowids`` the query matches (one intersected query, not one per rowid)."""
        import tantivy

        ids = [int(r) for r in rowids]
        query = self._query(words, **kw)
        if query is None or not ids:
            return set()
        only = tantivy.Query.term_set_query(self.schema, "rowid", ids)
        both = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)])
        searcher = self.index.searcher()
        hits = searcher.search(both, len(ids)).hits
        return set(_rowids(searcher, [addr for _, addr in hits]))

    def any_of(self, phrases: list[str]) -> set[int]:
        """Rowids of every document containing one of ``phrases`` (the exclusions of a
        filters-only query, which PostgreSQL cannot match in SQL)."""
        if not phrases:
            return set()
        query = self.index.parse_query(" ".join('"' + p + '"' for p in phrases), ["text", "title"])
        searcher = self.index.searcher()
        n = int(searcher.search(query, 1, count=True).count)
        if n == 0:
            return set()
        return set(_rowids(searcher, [addr for _, addr in searcher.search(query, n).hits]))

    def ideal_score(self, words) -> float:
        """What a document matching every one of ``words`` once scores, roughly: the sum of
        their BM25 idf (a term of frequency 1 in a document of average length scores its idf).
        Words no document contains add nothing. Hybrid fusion measures the best lexical
        match against it: a query whose best match shares only a common word or two with it
        is a weak lexical signal, however it ranks among the other weak ones."""
        return sum(self.term_idf(words).values())

    def term_idf(self, words) -> dict[str, float]:
        """``{stem: BM25 idf}`` of the distinct stems of ``words`` that some document contains."""
        import math

        stems = set(stem_words(words))
        if not stems:
            return {}
        searcher = self.index.searcher()
        n = searcher.num_docs
        out = {}
        for term in stems:
            df = searcher.doc_freq("text", term)
            if df:
                out[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return out

    def count(self, words, **kw) -> int:
        """How many documents a query matches (the count of this thread's search just
        before, for the same query, taken once; else one counting pass)."""
        last = getattr(self._counted, "last", None)
        self._counted.last = None
        if last is not None and last[0] == _count_key(words, kw):
            return last[1]
        query = self._query(words, **kw)
        if query is None:
            return 0
        return int(self.index.searcher().search(query, 1, count=True).count)


_STEMMER = threading.local()


def _snowball():
    """English Snowball (Porter2), as tantivy's ``en_stem`` tokenizer stems; one per thread
    (a PyStemmer object is not thread-safe)."""
    st = getattr(_STEMMER, "st", None)
    if st is None:
        import Stemmer

        st = _STEMMER.st = Stemmer.Stemmer("english")
    return st


def stem_words(words) -> list[str]:
    """Query words as the text field holds them: lower case, Snowball stems."""
    return _snowball().stemWords([w.lower() for w in words if w])


def text_stems(text: str, heads: set[str]) -> set[str]:
    """Which stems a text holds, as ``en_stem`` indexes it (runs of letters and digits, lower
    case, tokens over 40 characters dropped, Snowball stems), among those of its tokens that
    begin with one of ``heads`` (the first three letters of the stems asked about): stemming
    every token would be most of the cost."""
    if not heads:
        return set()
    found = _heads_pattern(frozenset(heads)).findall(text.lower())
    return set(_snowball().stemWords([t for t in set(found) if len(t) <= 40]))


@functools.lru_cache(maxsize=256)
def _heads_pattern(heads: frozenset[str]) -> re.Pattern:
    """Whole tokens that begin with one of ``heads``."""
    alts = "|".join(sorted(map(re.escape, heads), key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alts})[^\W_]*")


def _count_key(words, kw: dict) -> tuple:
    """What a query's match count depends on: its words and filters (not order or offset)."""
    return (tuple(words), tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple, set)) else v)
                                       for k, v in kw.items())))


def _rowids(searcher, addrs: list) -> list[int]:
    """Our rowids for tantivy hits: one columnar (fast-field) read for the whole batch where
    this tantivy has it (no stored-document decompression: ~6 us a hit less), else the store."""
    batch = getattr(searcher, "fast_field_values", None)
    if batch is not None and addrs:
        vals = batch("rowid", addrs)
        if None not in vals:
            return [int(v) for v in vals]
    return [int(searcher.doc(addr)["rowid"][0]) for addr in addrs]


def open_index(conn: sqlite3.Connection) -> FastIndex | None:
    """The process-wide FastIndex for this database (None: no tantivy, or in-memory db)."""
    if not available():
        return None
    path = index_dir(conn)
    if path is None:
        return None
    key = str(path)
    with _LOCK:
        idx = _OPEN.get(key)
        if idx is None:
            idx = _OPEN[key] = FastIndex(path)
    return idx


def close_all() -> None:
    with _LOCK:
        _OPEN.clear()


def update_fast(conn: sqlite3.Connection, *, progress: bool = False) -> dict:
    """Bring the tantivy index up to the store revision the FTS5 index reflects."""
    stats = {"indexed": 0}
    idx = open_index(conn)
    if idx is None:
        stats["skipped"] = "tantivy not installed" if not available() else "in-memory database"
        return stats
    if not fts5_is_index(conn):
        return _follow_store(conn, idx, stats, progress=progress)
    since = int(sql.get_state(conn, "tantivy_rev", "0"))
    if idx.stored_rev() != since:
        # The directory was removed or replaced (or belongs to another copy of the db):
        # rebuild it from scratch.
        since = 0
        idx.clear()
    upto = int(sql.get_state(conn, "lexical_rev", "0"))
    if upto <= since:
        return stats
    gone = sql.orphan_docs_since(conn) if since else []
    if not _write_changes(conn, idx, since, upto, gone, stats, progress=progress):
        return stats
    from paperwire.store.db import transaction

    idx.write_rev(upto)
    with transaction(conn):
        sql.set_state(conn, "tantivy_rev", upto)
        if gone:
            sql.set_state(conn, "deleted_rowids", "")
    return stats


def _write_changes(conn, idx: FastIndex, since: int, upto: int, gone: list, stats: dict, *,
                   progress: bool = False) -> bool:
    """Write the papers changed in revisions (since, upto] and drop ``gone`` rowids; False
    (with ``stats["skipped"]`` saying why) when another process holds the writer lock."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sql.count_changed_between(conn, since, upto), desc="tantivy", unit="paper",
                   file=sys.stderr, leave=False, dynamic_ncols=True)

    def docs():
        after = 0
        while True:
            rows = sql.papers_changed_between_dated(conn, since, upto, after, 5000)
            if not rows:
                return
            after = rows[-1][0]
            yield from rows

    try:
        stats["indexed"] = idx.write(docs(), gone, progress=bar.update if bar else None)
        return True
    except ValueError as exc:  # e.g. another process holds the writer lock
        stats["skipped"] = f"tantivy index busy: {exc}"
        return False
    finally:
        if bar:
            bar.close()


def _follow_store(conn, idx: FastIndex, stats: dict, *, progress: bool = False) -> dict:
    """PostgreSQL: bring this node's replica up to the store revision (papers written since
    the revision its directory records; rowids the store's bookkeeping lists as deleted go)."""
    with _CATCH_UP:
        since = idx.stored_rev()
        upto = sql.store_rev(conn)
        if upto <= since:
            return stats
        if since == 0:
            idx.clear()  # a fresh or foreign directory: start from nothing
        # The deleted list is shared by every node, so it is never cleared here (a delete
        # applied twice is harmless).
        gone = sql.orphan_docs_since(conn) if since else []
        if not _write_changes(conn, idx, since, upto, gone, stats, progress=progress):
            return stats
        idx.write_rev(upto)
        stats["rev"] = upto
    return stats


def fast_ready(conn: sqlite3.Connection) -> FastIndex | None:
    """The tantivy index if it reflects the same store revision as FTS5, else None.

    PostgreSQL: this node's replica, caught up to the store revision first (a replica
    another process is updating answers as it stands meanwhile)."""
    if not fts5_is_index(conn):
        idx = open_index(conn)
        if idx is None:
            return None
        if idx.stored_rev() < sql.store_rev(conn):
            _follow_store(conn, idx, {})
        idx.reload_if(idx.stored_rev())
        return idx
    trev = sql.get_state(conn, "tantivy_rev")
    if trev is None or trev != sql.get_state(conn, "lexical_rev"):
        return None
    idx = open_index(conn)
    if idx is None or idx.stored_rev() != int(trev):
        return None  # directory removed or replaced since: FTS5 answers until the next index run
    idx.reload_if(int(trev))
    return idx
