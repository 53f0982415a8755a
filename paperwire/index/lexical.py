"""Lexical search: BM25 over an SQLite FTS5 index (porter stemming, column weights),
highlighted snippets, and "more like this" queries.

Why FTS5 (see docs/bench/search.md): it ships with Python's sqlite3, updates
incrementally inside the same transactions as the store, survives SIGKILL like the rest
of the database, and its BM25 with porter stemming matches the quality of a dedicated
BM25 library on SciFact.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections import Counter
from functools import lru_cache

from paperwire.index.query import STOPWORDS, WORD, ParsedQuery, category_tokens, fts_expression, text_only_expression, tokens
from paperwire.store import search as sql

# bm25 column weights (title, abstract, authors). Title above abstract, tuned on SciFact
# train (docs/bench/search.md).
DEFAULT_WEIGHTS = (3.0, 1.0, 1.0)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: the same Porter algorithm as FTS5's porter tokenizer

    return Stemmer.Stemmer("porter")


def stem(words: list[str]) -> list[str]:
    return _stemmer().stemWords(words)


def doc_fields(title: str, abstract: str, authors_json: str, categories_json: str) -> tuple[str, str, str, str]:
    """The four FTS columns for a paper (authors one per line, categories as tokens)."""
    authors = json.loads(authors_json) if isinstance(authors_json, str) else list(authors_json or [])
    cats = json.loads(categories_json) if isinstance(categories_json, str) else list(categories_json or [])
    return title, abstract, "\n".join(authors), category_tokens(cats)


def lexical_search(
    conn: sqlite3.Connection,
    pq: ParsedQuery,
    *,
    limit: int,
    weights=DEFAULT_WEIGHTS,
    engine: str = "auto",
) -> list[tuple[int, float]]:
    """Top ``limit`` (rowid, bm25) for a parsed query (text, phrases, author/cat/date filters).

    ``engine``: "auto" (tantivy for plain-word queries when its index is caught up, else
    FTS5), "fts5" or "tantivy"."""
    if engine != "fts5" and (pq.words or pq.phrases):
        from paperwire.index.fastlex import fast_ready

        fast = fast_ready(conn)
        if fast is not None:
            return fast.search(pq.words, limit, **fast_filters(pq))
        if engine == "tantivy":
            raise RuntimeError("the tantivy index is not available or not caught up")
    expr = fts_expression(pq)
    if expr is None:
        return []
    try:
        return sql.lexical_top(conn, expr, weights, limit, published_from=pq.date_from, published_to=pq.date_to)
    except sqlite3.OperationalError as exc:
        if "fts5" not in str(exc).lower() and "syntax" not in str(exc).lower():
            raise
        # Should not happen (every token is quoted); fall back to plain words.
        fallback = text_only_expression(tokens(pq.raw))
        if fallback is None:
            return []
        return sql.lexical_top(conn, fallback, weights, limit, published_from=pq.date_from, published_to=pq.date_to)


def fast_filters(pq: ParsedQuery) -> dict:
    """The parts of a parsed query besides its ranked words, as FastIndex keywords."""
    return dict(date_from=pq.date_from, date_to=pq.date_to, phrases=pq.phrases, excluded=pq.excluded,
                authors=pq.authors, categories=pq.categories)


def more_like_this_terms(title: str, abstract: str, max_terms: int = 40) -> list[str]:
    """Distinctive words of a paper for a lexical "similar papers" query: title words first,
    then the abstract's most frequent non-stopwords."""
    title_words = [w for w in tokens(title) if w not in STOPWORDS and len(w) > 2 and not w.isdigit()]
    counts = Counter(w for w in tokens(abstract) if w not in STOPWORDS and len(w) > 2 and not w.isdigit())
    out = list(dict.fromkeys(title_words))
    for w, _ in counts.most_common():
        if len(out) >= max_terms:
            break
        if w not in out:
            out.append(w)
    return out[:max_terms]


def more_like_this(conn: sqlite3.Connection, title: str, abstract: str, *, limit: int, weights=DEFAULT_WEIGHTS):
    """(rowid, score) of papers lexically similar to a title + abstract."""
    terms = more_like_this_terms(title, abstract)
    from paperwire.index.fastlex import fast_ready

    fast = fast_ready(conn)
    if fast is not None and terms:
        return fast.search(terms, limit)
    expr = text_only_expression(terms)
    if expr is None:
        return []
    return sql.lexical_top(conn, expr, weights, limit)


# ------------------------------------------------------------------ snippets

_SENT = re.compile(r"(?<=[.!?])\s+")


def highlight(text: str, terms: list[str], *, max_words: int = 40) -> str:
    """An HTML-safe excerpt of ``text`` around the densest run of query terms, each
    matching word (same porter stem) wrapped in ``<mark>``. Text is HTML-escaped first,
    so hostile markup in titles or abstracts comes out inert."""
    if not text:
        return ""
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    if not spans:
        return html.escape(text)
    wanted = set(stem([t for t in terms if t])) if terms else set()
    words = [text[a:b].lower() for a, b in spans]
    hit = [s in wanted for s in stem(words)] if wanted else [False] * len(words)
    n = len(spans)
    if n <= max_words:
        lo, hi = 0, n
    else:
        # Window of max_words with the most hits (ties: earliest), by prefix sums.
        best, best_start, run = -1, 0, sum(hit[:max_words])
        best, best_start = run, 0
        for i in range(1, n - max_words + 1):
            run += hit[i + max_words - 1] - hit[i - 1]
            if run > best:
                best, best_start = run, i
        lo = best_start
        # Start a few words before the first hit for context.
        first = next((i for i in range(lo, lo + max_words) if hit[i]), lo)
        lo = max(0, min(lo, first - 5)) if first - lo > 10 else lo
        hi = min(n, lo + max_words)
    start = 0 if lo == 0 else spans[lo][0]
    end = len(text) if hi == n else spans[hi - 1][1]
    out = ["…" if start > 0 else ""]
    pos = start
    for i in range(lo, hi):
        a, b = spans[i]
        if hit[i]:
            out.append(html.escape(text[pos:a]))
            out.append("<mark>" + html.escape(text[a:b]) + "</mark>")
            pos = b
    out.append(html.escape(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out)
