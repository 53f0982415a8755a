"""Lexical side of the For-you model: a reader's distinctive words, run as one BM25 query.

arxiv-sanity-lite's TF-IDF SVM is the strongest single model on the author-history benchmark
(BENCHMARKS.md), but it needs every candidate's TF-IDF vector at request time. Its gain comes
from the reader's own vocabulary (method names, objects of study), and most of it is kept by a
Rocchio-style profile query through the lexical index the product already has (tantivy or
FTS5): the words that recur across the positive papers, BM25-scored against the window.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from paperwire.index.query import STOPWORDS, tokens

MAX_TERMS = 20
_MIN_LEN = 3


def _words(text: str) -> list[str]:
    return [w for w in tokens(text) if len(w) >= _MIN_LEN and w not in STOPWORDS and not w.isdigit()]


def profile_terms(papers: Iterable[tuple[str, str]], *, max_terms: int = MAX_TERMS,
                  exclude: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The reader's distinctive words from (title, abstract) pairs of positive papers.

    Ranked by how many positive papers use the word (title words count double), then by
    total use; words mostly found in ``exclude`` (papers marked not interested) drop out.
    BM25's idf then down-weights words common in the whole store."""
    doc_freq: Counter = Counter()
    total: Counter = Counter()
    for title, abstract in papers:
        tw = _words(title or "")
        aw = _words(abstract or "")
        for w in set(tw):
            doc_freq[w] += 2
        for w in set(aw):
            doc_freq[w] += 1
        total.update(tw)
        total.update(aw)
    bad: Counter = Counter()
    for title, abstract in exclude:
        bad.update(set(_words(f"{title} {abstract}")))
    ranked = sorted(doc_freq, key=lambda w: (-(doc_freq[w] - 2 * bad[w]), -total[w], w))
    return [w for w in ranked if doc_freq[w] - 2 * bad[w] > 0][:max_terms]
