"""The search API used by the CLI, the web app and digests.

``search(conn, query, ...)`` parses the query (:mod:`paperwire.index.query`), runs the
lexical (FTS5 BM25) and/or semantic (embedding) side, fuses them, applies filters,
sorting and pagination and returns highlighted hits. ``similar(conn, paper_id)`` reads
the precomputed neighbour list (falling back to live vectors, then to lexical
"more like this"). Both are safe to call per request in a long-running process: the
embedder and the in-memory vectors are cached per database file and refreshed when
the store changes.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from typing import Sequence

from paperwire.index.hybrid import DEFAULT_FUSION, FusionParams, fuse
from paperwire.index.lexical import DEFAULT_WEIGHTS, highlight, lexical_search, more_like_this
from paperwire.index.query import ParsedQuery, QueryError, fts_expression, parse_query
from paperwire.store import papers as papers_sql
from paperwire.store import search as sql
from paperwire.store.accounts import cache_revs
from paperwire.store.meta import database_file

__all__ = ["Hit", "SearchResults", "QueryError", "search", "similar", "MODES", "SORTS"]

MODES = ("hybrid", "lexical", "semantic")
SORTS = ("relevance", "date", "votes")
MAX_LIMIT = 100
MAX_DEPTH = 1000  # offset + limit: deeper pages are not useful and cost time
COUNT_CAP = 10_000


@dataclass
class Hit:
    """One result. ``snippet`` and ``title_html`` are HTML-safe (escaped, ``<mark>`` added)."""

    paper_id: str
    rowid: int
    score: float
    title: str
    snippet: str
    paper: dict = field(default_factory=dict)
    title_html: str = ""

    def to_dict(self, *, with_paper: bool = False) -> dict:
        d = asdict(self)
        d["id"] = self.paper_id
        if not with_paper:
            d.pop("paper")
        return d


@dataclass
class SearchResults:
    hits: list[Hit]
    total: int              # results available to page through: at least offset + len(hits) + 1
                            # when there is a next page; exact (to 10k) for phrase/filter queries
    mode: str               # the mode actually used
    notes: list[str]
    query: str
    offset: int = 0
    limit: int = 20
    sort: str = "relevance"

    def to_dict(self, *, with_paper: bool = False) -> dict:
        return {
            "query": self.query, "mode": self.mode, "total": self.total, "offset": self.offset,
            "limit": self.limit, "sort": self.sort, "notes": list(self.notes),
            "hits": [h.to_dict(with_paper=with_paper) for h in self.hits],
        }


class _Flags:
    """Hidden papers and ``{rowid: (hidden, date, votes)}``, remembered per database and
    store revisions.

    Every search drops hidden candidates; date and vote sorts also need each candidate's
    date and votes. Both change only with a write that bumps ``meta.rev`` or ``meta.web_rev``
    (imports, votes, hides: the same pair that keys the web page cache), so a memo keyed on
    the pair is never stale: the revisions are read before the rows. Hidden papers are few
    and come from a partial index in one query, so first pages by relevance (most searches)
    skip the per-candidate read: ~200 random B-tree lookups, ~0.3 ms at 100k papers."""

    MAX_ENTRIES = 250_000  # ~25 MB of per-paper entries; then they start over

    def __init__(self):
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._hidden: frozenset[int] | None = None
        self._data: dict[int, tuple] = {}

    def _current(self, conn: sqlite3.Connection) -> tuple[tuple, frozenset[int] | None, dict[int, tuple]]:
        key = (database_file(conn) or id(conn), cache_revs(conn))
        with self._lock:
            if key != self._key or len(self._data) > self.MAX_ENTRIES:
                self._key, self._hidden, self._data = key, None, {}
            return key, self._hidden, self._data

    def hidden(self, conn: sqlite3.Connection) -> frozenset[int]:
        """Rowids of the hidden papers."""
        key, hidden, _ = self._current(conn)
        if hidden is None:
            hidden = sql.hidden_rowids(conn)
            with self._lock:
                # Another thread may have moved the key on (a hide committed meanwhile):
                # then this set may be older than that revision and must not be kept for it.
                if self._key == key:
                    self._hidden = hidden
        return hidden

    def meta(self, conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, tuple]:
        """``{rowid: (hidden, date, votes)}`` of the papers that exist among ``rowids``."""
        _, _, data = self._current(conn)
        out = {r: data[r] for r in rowids if r in data}
        missing = [r for r in rowids if r not in out]
        if missing:
            fresh = sql.paper_meta(conn, missing)
            out.update(fresh)
            data.update(fresh)  # a dict replaced meanwhile is simply dropped with its key
        return out


_FLAGS = _Flags()


def _as_list(v) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, (list, tuple, set)):
        return [str(x) for x in v if str(x).strip()]
    return [str(v)]


def _apply_filters(pq: ParsedQuery, filters: dict) -> None:
    """Merge keyword filters (web form fields) into a parsed query via the query syntax."""
    parts = []
    for a in _as_list(filters.pop("author", None)) + _as_list(filters.pop("authors", None)):
        parts.append(f'author:"{a.replace(chr(34), " ")}"')
    for c in _as_list(filters.pop("category", None)) + _as_list(filters.pop("cat", None)) + _as_list(filters.pop("categories", None)):
        parts.append(f"cat:{c.strip()}")
    for key in ("year", "after", "before"):
        v = filters.pop(key, None)
        if v not in (None, ""):
            parts.append(f"{key}:{str(v).strip()}")
    if filters:
        raise QueryError(f"Unknown search filter(s): {', '.join(sorted(filters))}.")
    if parts:
        extra = parse_query(" ".join(parts), max_chars=10_000)
        pq.authors += extra.authors
        pq.categories += extra.categories
        for attr, pick in (("date_from", max), ("date_to", min)):
            a, b = getattr(pq, attr), getattr(extra, attr)
            setattr(pq, attr, b if a is None else (a if b is None else pick(a, b)))
        if pq.date_from and pq.date_to and pq.date_from >= pq.date_to:
            raise QueryError(f"The date range is empty (from {pq.date_from} to before {pq.date_to}).")


def _check_paging(limit, offset) -> tuple[int, int]:
    try:
        limit, offset = int(limit), int(offset)
    except (TypeError, ValueError):
        raise QueryError("limit and offset must be whole numbers.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}.")
    if offset < 0:
        raise QueryError("offset cannot be negative.")
    if offset + limit > MAX_DEPTH:
        raise QueryError(f"Results are available up to position {MAX_DEPTH}; refine the query.")
    return limit, offset


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    mode: str = "hybrid",
    limit: int = 20,
    offset: int = 0,
    sort: str = "relevance",
    embedder=None,
    fusion: FusionParams | None = None,
    weights: Sequence[float] | None = None,
    with_snippets: bool = True,
    with_title_html: bool = True,
    **filters,
) -> SearchResults:
    """Search papers. Filters: ``author``, ``category``, ``year``, ``after``, ``before``
    (same meaning as the query operators). Raises :class:`QueryError` for bad input;
    never raises on FTS syntax. Semantic/hybrid without an embedding backend or vectors
    runs lexically and says why in ``notes``. ``with_snippets=False`` skips the highlighted
    snippets, ``with_title_html=False`` only the highlighted titles (callers that show plain
    titles: about a third of a web search's highlighting time)."""
    if mode not in MODES:
        raise QueryError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
    if sort not in SORTS:
        raise QueryError(f"Unknown sort {sort!r}: use one of {', '.join(SORTS)}.")
    limit, offset = _check_paging(limit, offset)
    pq = parse_query(query)
    _apply_filters(pq, dict(filters))
    fusion = fusion or DEFAULT_FUSION
    weights = tuple(weights or DEFAULT_WEIGHTS)
    notes: list[str] = []
    need = offset + limit

    if not pq.has_text:
        # Filters only (author:/cat:/dates): newest (or most voted) first.
        from paperwire.index.fastlex import fast_ready
        from paperwire.index.lexical import fast_filters

        fast = fast_ready(conn) if sort != "votes" else None
        if fast is not None:
            kw = fast_filters(pq)
            # Over-fetch a little: hidden papers are dropped afterwards.
            ranked = fast.search([], limit + 20, order="date", offset=offset, **kw)
            total = fast.count([], **kw)
            meta = _FLAGS.meta(conn, [r for r, _ in ranked])
            ranked = [(r, s) for r, s in ranked if r in meta and not meta[r][0]][:limit]
            if sort == "relevance":
                notes.append("no search words: newest first")
            return _results(conn, ranked, total, "lexical", notes, pq, offset, limit, sort, paged=True,
                            with_snippets=with_snippets, with_title_html=with_title_html)
        ids, total = sql.filtered_recent(
            conn, authors=pq.authors, categories=pq.categories, published_from=pq.date_from,
            published_to=pq.date_to, order="votes" if sort == "votes" else "date", limit=limit, offset=offset,
        )
        if sort == "relevance":
            notes.append("no search words: newest first")
        ranked = [(r, 0.0) for r in ids]
        return _results(conn, ranked, total, "lexical", notes, pq, offset, limit, sort, paged=True,
                        with_snippets=with_snippets, with_title_html=with_title_html)

    used = mode
    view = emb = None
    if mode in ("hybrid", "semantic"):
        from paperwire.index.semantic import encode_query, get_query_index, resolve_embedder

        emb, note = resolve_embedder(conn, embedder)
        if emb is not None:
            view = get_query_index(conn, emb.name)
            if len(view) == 0:
                note = "semantic search unavailable: no vectors yet (run `paperwire index`)"
                view = None
        if view is None:
            notes.append(note or "semantic search unavailable")
            notes.append("showing lexical results")
            used = "lexical"

    # One more than the page (at least 50) so callers can tell whether a next page exists.
    pool = max(need + 1, fusion.pool if used == "hybrid" else 50)
    if sort != "relevance":
        pool = max(pool, 200)
    lex: list[tuple[int, float]] = []
    if used in ("lexical", "hybrid") or (used == "semantic" and (pq.phrases or pq.excluded)):
        lex = lexical_search(conn, pq, limit=pool if used != "semantic" else MAX_DEPTH * 5, weights=weights)
    sem: list[tuple[int, float]] = []
    if view is not None:
        qvec = encode_query(emb, pq.text or " ".join(pq.words))
        restrict = None
        if pq.phrases or pq.excluded:
            # Phrases and exclusions are hard constraints: only lexical matches qualify.
            restrict = {r for r, _ in lex} if used == "semantic" else {r for r, _ in lexical_search(conn, pq, limit=MAX_DEPTH * 5, weights=weights)}
        if restrict is not None:
            sem = view.top(qvec, pool, allowed=restrict) if restrict else []
        else:
            sem = view.top(qvec, pool * (8 if pq.has_filters else 1))
        if pq.has_filters and sem:
            keep = sql.filter_rowids(conn, [r for r, _ in sem], authors=pq.authors, categories=pq.categories,
                                     published_from=pq.date_from, published_to=pq.date_to)
            sem = [t for t in sem if t[0] in keep]
        sem = sem[:pool]

    if used == "lexical":
        ranked = lex
    elif used == "semantic":
        ranked = sem
    else:
        def cosine_of(rowids):
            found, vecs = view.vectors_for(rowids)
            if not found:
                return {}
            return dict(zip(found, (vecs @ qvec).tolist()))

        ranked = fuse(lex, sem, fusion, cosine_of=cosine_of)
        if sort != "relevance" and lex:
            # Date/vote order needs a set of matches, and semantic neighbours never run
            # out; the lexical matches are that set (ranked candidates only add noise).
            matched = {r for r, _ in lex}
            ranked = [t for t in ranked if t[0] in matched]

    total = len(ranked)
    # Exact counts walk every match: only for narrow queries (phrases, filters), never for
    # ranked words, where "more than the pool" is all a pager needs (and which are most
    # requests: they skip the index-state reads below as well).
    if used in ("lexical", "hybrid") and len(lex) >= pool and not pq.words:
        from paperwire.index.fastlex import fast_ready

        fast = fast_ready(conn)
        if fast is not None:
            from paperwire.index.lexical import fast_filters

            total = max(total, min(COUNT_CAP, fast.count(pq.words, **fast_filters(pq))))
        else:
            expr = fts_expression(pq)
            if expr and not (pq.date_from or pq.date_to):
                try:
                    total = max(total, sql.lexical_count(conn, expr, COUNT_CAP))
                except sqlite3.OperationalError:
                    pass
    return _results(conn, ranked, total, used, notes, pq, offset, limit, sort, with_snippets=with_snippets,
                    with_title_html=with_title_html)


def _results(conn, ranked, total, used, notes, pq, offset, limit, sort, *, paged=False, with_snippets=True,
             with_title_html=True) -> SearchResults:
    """Drop hidden papers, sort, take the page, fetch rows, build snippets."""
    rows = None
    if paged:
        page = ranked
    else:
        visible = None
        if sort == "relevance" and offset == 0:
            # Most searches (first pages by relevance): only the hidden set is needed, and
            # only the page's rows are read. If an index still holds rowids whose paper rows
            # are gone (until the next index run), and for later pages, whose offsets must
            # count existing rows only, the exact path below checks every candidate.
            hidden = _FLAGS.hidden(conn)
            visible = [(r, s) for r, s in ranked if r not in hidden]
            page = visible[:limit]
            rows = papers_sql.get_papers_by_rowid(conn, [r for r, _ in page])
            if len(rows) < len(page):
                visible = None
        if visible is None:
            meta = _FLAGS.meta(conn, [r for r, _ in ranked])
            visible = [(r, s) for r, s in ranked if r in meta and not meta[r][0]]
            if sort == "date":
                visible.sort(key=lambda t: (meta[t[0]][1] or "", t[1]), reverse=True)
            elif sort == "votes":
                visible.sort(key=lambda t: (meta[t[0]][2], t[1]), reverse=True)
            page = visible[offset : offset + limit]
            rows = None
        total -= len(ranked) - len(visible)
    if rows is None:
        rows = papers_sql.get_papers_by_rowid(conn, [r for r, _ in page])
    terms = pq.highlight_terms()
    hits = []
    for r, s in page:
        p = rows.get(r)
        if p is None:
            continue
        hits.append(Hit(
            paper_id=p["paper_id"], rowid=r, score=round(float(s), 6), title=p["title"],
            snippet=highlight(p["abstract"], terms) if with_snippets else "",
            paper=p,
            title_html=highlight(p["title"], terms, max_words=1000) if with_snippets and with_title_html else "",
        ))
    return SearchResults(hits=hits, total=max(total, len(hits)), mode=used, notes=notes, query=pq.raw,
                         offset=offset, limit=limit, sort=sort)


def _page_rows(conn, ranked: list[tuple[int, float]], limit: int) -> tuple[list[tuple[int, float]], dict[int, dict]]:
    """The first ``limit`` of ``ranked`` whose paper rows exist, and those rows: an index can
    hold the rowid of a deleted row until the next index run, and the next candidate takes
    its place."""
    rows: dict[int, dict] = {}
    start = 0
    while start < len(ranked) and len(rows) < limit:
        part = ranked[start : start + limit - len(rows)]
        rows.update(papers_sql.get_papers_by_rowid(conn, [r for r, _ in part]))
        start += len(part)
    return [t for t in ranked[:start] if t[0] in rows], rows


def similar(conn: sqlite3.Connection, paper_id: str, *, limit: int = 10) -> list[Hit]:
    """Papers similar to ``paper_id`` (public id, arXiv id or alias), best first.

    Uses the neighbour list computed by ``update_index``; if it is missing or too short,
    the live vectors; without vectors, a lexical "more like this" over title + abstract.
    Raises KeyError for an unknown paper.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    paper = papers_sql.get_paper(conn, paper_id)
    if paper is None:
        raise KeyError(f"no paper with id {paper_id!r}")
    rowid = paper["id"]
    model = sql.get_state(conn, "model")
    ranked: list[tuple[int, float]] = []
    stored = sql.get_similar(conn, rowid)
    if stored and stored[0] == paper["content_hash"] and len(stored[2]) >= limit:
        ranked = [(int(r), float(s)) for r, s in stored[2]]
    elif model:
        from paperwire.index.semantic import get_query_index

        view = get_query_index(conn, model)
        if len(view) > 1:
            found, vecs = view.vectors_for([rowid])
            if not found:
                from paperwire.store import embeddings as emb_store

                got = emb_store.get_embeddings(conn, model, [paper["content_hash"]])
                vecs = [got[paper["content_hash"]]] if got else []
            if len(vecs):
                ranked = view.top(vecs[0], limit + 5, exclude=rowid)
    if not ranked:
        ranked = [(r, s) for r, s in more_like_this(conn, paper["title"], paper["abstract"], limit=limit + 5) if r != rowid]
    hidden = _FLAGS.hidden(conn)
    ranked, rows = _page_rows(conn, [(r, s) for r, s in ranked if r not in hidden and r != rowid], limit)
    return [
        Hit(paper_id=rows[r]["paper_id"], rowid=r, score=round(float(s), 6), title=rows[r]["title"],
            snippet=highlight(rows[r]["abstract"], []), paper=rows[r], title_html=highlight(rows[r]["title"], [], max_words=1000))
        for r, s in ranked
    ]
