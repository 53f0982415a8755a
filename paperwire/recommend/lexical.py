"""Lexical side of the For-you model: a reader's distinctive words, run as one BM25 query.

arxiv-sanity-lite's TF-IDF SVM is the strongest single model on the author-history benchmark
(BENCHMARKS.md), but it needs every candidate's TF-IDF vector at request time. Its gain comes
from the reader's own vocabulary (method names, objects of study), and most of it is kept by a
Rocchio-style profile query through the lexical index the product already has (tantivy or
FTS5): the words that recur across the positive papers, BM25-scored against the window.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Iterable, Sequence

from paperwire.index.query import STOPWORDS, tokens

MAX_TERMS = 20
_MIN_LEN = 3


def _words(text: str) -> list[str]:
    return [w for w in tokens(text) if len(w) >= _MIN_LEN and w not in STOPWORDS and not w.isdigit()]


@lru_cache(maxsize=4096)  # a few MB: the newest positives of the active readers
def _paper_words(title: str, abstract: str) -> tuple[tuple[str, ...], Counter]:
    # Tokenising 100 papers was ~3 ms of every retrain; the same papers recur in a reader's
    # profile from one click to the next (and across readers), so their words are kept:
    # the paper's document-frequency votes (title words twice) and its word counts.
    tw = _words(title)
    aw = _words(abstract)
    tset = tuple(frozenset(tw))
    return tset + tset + tuple(frozenset(aw)), Counter(tw + aw)


def profile_terms(papers: Iterable[tuple[str, str]], *, max_terms: int = MAX_TERMS,
                  exclude: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The reader's distinctive words from (title, abstract) pairs of positive papers.

    Ranked by how many positive papers use the word (title words count double), then by
    total use; words mostly found in ``exclude`` (papers marked not interested) drop out.
    BM25's idf then down-weights words common in the whole store."""
    doc_freq: Counter = Counter()
    counts = []
    for title, abstract in papers:
        votes, words = _paper_words(title or "", abstract or "")
        doc_freq.update(votes)  # counted in C
        counts.append(words)
    bad: Counter = Counter()
    for title, abstract in exclude:
        bad.update(set(_words(f"{title} {abstract}")))
    score = {w: c - 2 * bad.get(w, 0) for w, c in doc_freq.items()} if bad else doc_freq
    # Only words scoring at least the max_terms-th best score can place: the tie-break (total
    # use) is counted and sorted for those few, not for the whole vocabulary of 100 papers.
    # Scores are small integers, so the cut comes from their histogram (counted in C).
    cut, seen = 1, 0
    for value, n in sorted(Counter(score.values()).items(), reverse=True):
        cut, seen = value, seen + n
        if seen >= max_terms:
            break
    kept = [w for w, c in score.items() if c >= cut and c > 0]
    total = {w: sum(c.get(w, 0) for c in counts) for w in kept}
    return sorted(kept, key=lambda w: (-score[w], -total[w], w))[:max_terms]
