"""Lexical side of the For-you model: a reader's distinctive words, run as one BM25 query.

arxiv-sanity-lite's TF-IDF SVM is the strongest single model on the author-history benchmark
(BENCHMARKS.md), but it needs every candidate's TF-IDF vector at request time. Its gain comes
from the reader's own vocabulary (method names, objects of study), and most of it is kept by a
Rocchio-style profile query through the lexical index the product already has (tantivy or
FTS5): the words that recur across the positive papers, BM25-scored against the window.
"""

from __future__ import annotations

import heapq
from collections import Counter
from functools import lru_cache
from typing import Iterable, Sequence

from paperwire.index.query import STOPWORDS, tokens

MAX_TERMS = 20
_MIN_LEN = 3


def _words(text: str) -> list[str]:
    return [w for w in tokens(text) if len(w) >= _MIN_LEN and w not in STOPWORDS and not w.isdigit()]


@lru_cache(maxsize=4096)  # a few MB: the newest positives of the active readers
def _paper_words(title: str, abstract: str) -> tuple[frozenset, frozenset, tuple[str, ...]]:
    # Tokenising 100 papers was ~3 ms of every retrain; the same papers recur in a reader's
    # profile from one click to the next (and across readers), so their words are kept.
    tw = _words(title)
    aw = _words(abstract)
    return frozenset(tw), frozenset(aw), tuple(tw + aw)


def profile_terms(papers: Iterable[tuple[str, str]], *, max_terms: int = MAX_TERMS,
                  exclude: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The reader's distinctive words from (title, abstract) pairs of positive papers.

    Ranked by how many positive papers use the word (title words count double), then by
    total use; words mostly found in ``exclude`` (papers marked not interested) drop out.
    BM25's idf then down-weights words common in the whole store."""
    doc_freq: Counter = Counter()
    total: Counter = Counter()
    for title, abstract in papers:
        tset, aset, every = _paper_words(title or "", abstract or "")
        for w in tset:
            doc_freq[w] += 2
        for w in aset:
            doc_freq[w] += 1
        total.update(every)
    bad: Counter = Counter()
    for title, abstract in exclude:
        bad.update(set(_words(f"{title} {abstract}")))
    kept = [w for w in doc_freq if doc_freq[w] - 2 * bad[w] > 0]
    # nsmallest == sorted(...)[:max_terms], without sorting the whole vocabulary of 100 papers.
    return heapq.nsmallest(max_terms, kept, key=lambda w: (-(doc_freq[w] - 2 * bad[w]), -total[w], w))
