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
from dataclasses import asdict, dataclass, field
from typing import Sequence

from paperwire.index.coverage import lexical_strength
from paperwire.index.hybrid import DEFAULT_FUSION, FusionParams, fuse
from paperwire.index.lexical import DEFAULT_WEIGHTS, highlight, lexical_search, more_like_this
from paperwire.index.passages import rerank_head, rescorer
from paperwire.index.query import ParsedQuery, QueryError, check_searchable, exclusion_expression, parse_query
from paperwire.index.resultset import NO_MATCH_COSINE, _Flags, count_results, no_match_cosine  # noqa: F401
from paperwire.index.spell import query_spelling, rewrite_words
from paperwire.store import papers as papers_sql
from paperwire.store import search as sql
from paperwire.store.dialect import fts5_is_index

__all__ = ["Hit", "SearchResults", "QueryError", "search", "similar", "MODES", "SORTS"]

MODES = ("hybrid", "lexical", "semantic")
SORTS = ("relevance", "date", "votes")
MAX_LIMIT = 120  # HF's papers search allows up to 120 (issue 12)
MAX_DEPTH = 1000  # offset + limit: deeper pages are not useful and cost time
COUNT_CAP = 10_000
# A query with a misspelt word that matches fewer papers than this is run corrected.
FEW_MATCHES = 5


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
    total_exact: bool = True        # False: ``total`` is a lower bound (show "N+")
    suggestion: str | None = None   # "did you mean": the query with misspelt words corrected
    corrected_from: str | None = None  # these are the results of ``query``, corrected from this
    no_match: bool = False          # nothing contains the words and nothing is close in meaning

    def total_text(self) -> str:
        """The total for people: "1,234" when exact, "1,234+" when a lower bound."""
        return f"{self.total:,}" + ("" if self.total_exact else "+")

    def to_dict(self, *, with_paper: bool = False) -> dict:
        return {
            "query": self.query, "mode": self.mode, "total": self.total, "total_exact": self.total_exact,
            "suggestion": self.suggestion, "corrected_from": self.corrected_from, "no_match": self.no_match,
            "offset": self.offset, "limit": self.limit, "sort": self.sort, "notes": list(self.notes),
            "hits": [h.to_dict(with_paper=with_paper) for h in self.hits],
        }


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
    correct: bool = True,
    **filters,
) -> SearchResults:
    """Search papers. Filters: ``author``, ``category``, ``year``, ``after``, ``before``
    (same meaning as the query operators). Raises :class:`QueryError` for bad input;
    never raises on FTS syntax. Semantic/hybrid without an embedding backend or vectors
    runs lexically and says why in ``notes``. ``with_snippets=False`` skips the highlighted
    snippets, ``with_title_html=False`` only the highlighted titles (callers that show plain
    titles: about a third of a web search's highlighting time).

    Words that no paper contains are checked against the corpus vocabulary
    (:mod:`paperwire.index.spell`): when they make up half the words, or the query finds
    fewer than ``FEW_MATCHES`` papers, the corrected query is searched (``corrected_from``
    set, a note says so); otherwise ``suggestion`` offers it. ``correct=False`` turns this
    off. A query with no lexical match whose best cosine is below the embedder's
    threshold returns no hits, ``no_match=True`` and a note."""
    if mode not in MODES:
        raise QueryError(f"Unknown search mode {mode!r}: use one of {', '.join(MODES)}.")
    if sort not in SORTS:
        raise QueryError(f"Unknown sort {sort!r}: use one of {', '.join(SORTS)}.")
    limit, offset = _check_paging(limit, offset)
    pq = parse_query(query, require_terms=False)
    _apply_filters(pq, dict(filters))
    check_searchable(pq)  # "-word" with a filter from the form: the filter minus the word
    fusion = fusion or DEFAULT_FUSION
    weights = tuple(weights or DEFAULT_WEIGHTS)
    notes: list[str] = []

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
        excl: dict = {"excluded": exclusion_expression(pq)}
        if pq.excluded and not fts5_is_index(conn):
            # No FTS5 in a PostgreSQL store: the node's tantivy replica names the excluded papers.
            lex_index = fast_ready(conn)
            if lex_index is None:
                raise QueryError("Exclusions need the lexical index: run `paperwire index`.")
            excl = {"excluded_rowids": lex_index.any_of(pq.excluded)}
        ids, total = sql.filtered_recent(
            conn, authors=pq.authors, categories=pq.categories, published_from=pq.date_from,
            published_to=pq.date_to, order="votes" if sort == "votes" else "date", limit=limit, offset=offset,
            **excl,
        )
        if sort == "relevance":
            notes.append("no search words: newest first")
        ranked = [(r, 0.0) for r in ids]
        return _results(conn, ranked, total, "lexical", notes, pq, offset, limit, sort, paged=True,
                        with_snippets=with_snippets, with_title_html=with_title_html)

    kw = dict(mode=mode, limit=limit, offset=offset, sort=sort, embedder=embedder, fusion=fusion, weights=weights,
              with_snippets=with_snippets, with_title_html=with_title_html)
    fixes, unknown = query_spelling(conn, pq.words, pq.raw) if correct else ({}, [])
    all_fixed = bool(fixes) and len(fixes) == len(unknown)
    if all_fixed and 2 * len(unknown) >= len(pq.words):
        # Half the words or more are in no paper: the original can only match on the rest.
        alt = _corrected(conn, pq, fixes, filters, notes, kw)
        if alt is not None:
            return alt
    # The embedding of a misspelt word is noise: the semantic side reads the corrected words
    # while the words as typed stay the lexical query (they match nothing either way).
    spelt = {w: c.suggestion for w, c in fixes.items()}
    meaning = rewrite_words(pq.text, spelt) if fixes else None
    res, n_lex = _ranked(conn, pq, notes=notes, meaning=meaning, **kw)
    if all_fixed and n_lex < FEW_MATCHES:
        alt = _corrected(conn, pq, fixes, filters, notes, kw)
        if alt is not None:
            return alt
    if fixes:
        # Both find something (the corrected words are in the vocabulary by construction):
        # keep the original and offer the correction. Uncorrectable words are dropped from
        # the suggestion only when nothing matched ("xyzzyqwerty plugh" -> "plug").
        drop = [w for w in unknown if w not in fixes] if res.no_match else []
        res.suggestion = rewrite_words(pq.raw, spelt, drop=drop) or None
    if res.no_match:
        note = f'no paper matches "{pq.raw}"'
        if res.suggestion:
            note += f'; did you mean "{res.suggestion}"?'
        res.notes.append(note)
    elif res.suggestion:
        res.notes.append(f'did you mean "{res.suggestion}"?')
    return res


def _corrected(conn, pq: ParsedQuery, fixes: dict, filters: dict, notes: list[str], kw: dict) -> SearchResults | None:
    """The results of the corrected query, noting the correction; None if it finds nothing."""
    raw = rewrite_words(pq.raw, {w: c.suggestion for w, c in fixes.items()})
    try:
        pq2 = parse_query(raw, require_terms=False, max_chars=10_000)
        _apply_filters(pq2, dict(filters))
        check_searchable(pq2)
    except QueryError:
        return None
    res, _ = _ranked(conn, pq2, notes=list(notes), **kw)
    if not res.hits:
        return None
    missing = ", ".join(f'"{w}"' for w in fixes)
    res.notes.insert(0, f'showing results for "{raw}" (no paper contains {missing})')
    res.corrected_from = pq.raw
    return res


def _ranked(conn, pq: ParsedQuery, *, mode, limit, offset, sort, embedder, fusion, weights, with_snippets,
            with_title_html, notes, meaning: str | None = None) -> tuple[SearchResults, int]:
    """A query with words or phrases: (results, lexical matches found: a lower bound).
    ``meaning``: the text the semantic side embeds instead of the query's own."""
    need = offset + limit
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

    from paperwire.index.fastlex import fast_ready
    from paperwire.index.lexical import fast_filters

    # The result set, the same whatever the sort or page: every lexical match, plus (hybrid)
    # those of the `base` nearest papers by meaning above the no-match threshold. Totals
    # count that set.
    base = fusion.pool if used == "hybrid" else 50
    # Pages within the first `base` results rank that pool; deeper pages rank a fixed deep
    # pool (and keep the first `base` as the shallow ranking had them), so every page of a
    # query comes from the same ordering: no paper shown twice or skipped between pages.
    deep = need > base
    pool = MAX_DEPTH if deep else base
    lex: list[tuple[int, float]] = []
    lex_asked = 0
    fast = fast_ready(conn) if used != "semantic" else None
    if used in ("lexical", "hybrid"):
        if sort == "date" and fast is not None and (pq.words or pq.phrases):
            # Exact date order of all lexical matches: tantivy sorts them by its day field.
            lex_asked = need + 1
            lex = fast.search(pq.words, lex_asked, order="date", **fast_filters(pq))
        else:
            # Date (without tantivy) and vote orders sort the MAX_DEPTH best matches.
            lex_asked = pool if sort == "relevance" else MAX_DEPTH
            lex = lexical_search(conn, pq, limit=lex_asked, weights=weights)
    elif pq.phrases or pq.excluded:
        lex_asked = MAX_DEPTH * 5
        lex = lexical_search(conn, pq, limit=lex_asked, weights=weights)
    sem: list[tuple[int, float]] = []
    if view is not None:
        qvec = encode_query(emb, meaning or pq.text or " ".join(pq.words))
        restrict = None
        if pq.phrases or pq.excluded:
            # Phrases and exclusions are hard constraints: only lexical matches qualify.
            restrict = {r for r, _ in lex} if used == "semantic" else {r for r, _ in lexical_search(conn, pq, limit=MAX_DEPTH * 5, weights=weights)}
        # Hybrid takes only the `base` nearest as candidates (lexical ones get their cosine
        # looked up); semantic mode pages through its own list.
        sem_k = base if used == "hybrid" else pool
        if restrict is not None:
            sem = view.top(qvec, sem_k, allowed=restrict) if restrict else []
        else:
            sem = view.top(qvec, sem_k * (8 if pq.has_filters else 1))
        if pq.has_filters and sem:
            keep = sql.filter_rowids(conn, [r for r, _ in sem], authors=pq.authors, categories=pq.categories,
                                     published_from=pq.date_from, published_to=pq.date_to)
            sem = [t for t in sem if t[0] in keep]
        sem = sem[:sem_k]
        has_lex = bool(lex) or (used == "semantic" and not (pq.phrases or pq.excluded)
                                and bool(lexical_search(conn, pq, limit=1, weights=weights)))
        threshold = no_match_cosine(emb)
        if not has_lex and threshold is not None and (not sem or sem[0][1] < threshold):
            # Nothing contains the words and nothing is close in meaning: say so instead of
            # listing the nearest neighbours, which always exist.
            return _empty(pq, used, notes, offset, limit, sort), 0

    if not lex and used == "lexical":
        return _empty(pq, used, notes, offset, limit, sort), 0
    lexset = {r for r, _ in lex}
    # The nearest papers by meaning join the set only when close enough to count as results
    # (the no-match threshold): a date-sorted list is not padded with unrelated neighbours.
    floor = no_match_cosine(emb) if emb is not None else None
    near = [r for r, c in sem[:base] if floor is None or c >= floor] if used == "hybrid" else []
    if used == "lexical":
        ranked = lex
    elif used == "semantic":
        # The nearest papers' best sentences re-order the head of the list (by relevance).
        ranked = (rerank_head(conn, emb.name, qvec, sem, base, fusion.semantic_passage_weight)
                  if sort == "relevance" else sem)
    else:
        def cosine_of(rowids):
            found, vecs = view.vectors_for(rowids)
            if not found:
                return {}
            return dict(zip(found, (vecs @ qvec).tolist()))

        # Each candidate's best sentence joins its cosine (not needed to sort by date or votes);
        # BM25 is measured against the query's ideal score, not only against its best match,
        # and weighs nothing when even its best matches cover little of the query.
        by_relevance = sort == "relevance"
        scale, trust = lexical_strength(conn, fast, pq.words, [r for r, _ in lex], fusion, by_relevance=by_relevance,
                                        phrases=bool(pq.phrases))
        fuse_kw = dict(cosine_of=cosine_of, rescore=rescorer(conn, emb.name, qvec, fusion) if by_relevance else None,
                       lexical_scale=scale, lexical_trust=trust)
        ranked = fuse(lex, sem, fusion, **fuse_kw)
        allowed = lexset.union(near)
        ranked = [t for t in ranked if t[0] in allowed]
        if deep and sort == "relevance" and len(lex) > base:
            head_lex = lex[:base]
            head_ok = {r for r, _ in head_lex}.union(near)
            head = [t for t in fuse(head_lex, sem, fusion, **fuse_kw) if t[0] in head_ok][:base]
            shown = {r for r, _ in head}
            ranked = head + [t for t in ranked if t[0] not in shown]

    hidden = _FLAGS.hidden(conn)
    if used == "semantic":
        total, exact = len([r for r, _ in ranked if r not in hidden]), len(sem) < pool
    else:
        total, exact = count_results(conn, pq, lex, lex_asked, near, hidden, fast, cap=COUNT_CAP)
    res = _results(conn, ranked, total, used, notes, pq, offset, limit, sort, with_snippets=with_snippets,
                   with_title_html=with_title_html)
    res.total_exact = exact and res.total == total
    return res, len(lex)


def _empty(pq: ParsedQuery, used: str, notes: list[str], offset: int, limit: int, sort: str) -> SearchResults:
    return SearchResults(hits=[], total=0, mode=used, notes=notes, query=pq.raw, offset=offset, limit=limit,
                         sort=sort, total_exact=True, no_match=True)


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
            # Rowids an index still holds for deleted papers (until the next index run) are
            # not results; hidden ones are already left out of the total.
            total -= sum(1 for r, _ in ranked if r not in meta)
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
