"""How much of a query its best lexical matches cover: the gate on the lexical weight.

BM25 ranks the documents that match a query's words, however few of them: a paraphrase
("photo collection of rashes and moles on darker complexions") whose only shared words are
"photo" and "collection" still has a "best" lexical match, and at full weight that match
outranks the semantic side's right answer. Coverage measures the match, not its rank: the
share of the query's idf (over the words some paper contains) that the best of the top few
lexical matches contains. Hybrid fusion multiplies the lexical weight by
:func:`lexical_trust` of it (``FusionParams.coverage_low / coverage_high``): no weight when
the matches cover little of the query, full weight once they cover enough.

Tuned on SciFact train and our own demo query sets (bench/coverage_gate.py, BENCHMARKS.md,
"Search quality, round 4"): a claim or a plain query is covered 0.6-0.7 at the median, a
word-disjoint paraphrase 0.3.
"""

from __future__ import annotations

from typing import Sequence

from paperwire.store import search as sql

# The lexical matches whose best coverage counts: the head of BM25's list, where a match
# that covers the query would be (a few stored texts read per query).
COVERAGE_TOP = 5


def lexical_strength(conn, fast, words: Sequence[str], rowids: Sequence[int], fusion, *,
                     by_relevance: bool = True, phrases: bool = False) -> tuple[float, float]:
    """How far hybrid fusion trusts this query's lexical side: ``(lexical_scale, lexical_trust)``
    for :func:`paperwire.index.hybrid.fuse`. The scale is ``fusion.lexical_floor`` times the
    query's ideal score (its words' idf summed); the trust follows the coverage of BM25's best
    matches (``rowids``, its order), computed only for a relevance order (the others do not
    use the fused score). A query with a quoted phrase keeps its full lexical weight: its
    matches hold the phrase by construction. Without tantivy: (0, 1), BM25 scaled by its best
    alone."""
    if fast is None:
        return 0.0, 1.0
    idf = fast.term_idf(words)
    scale = fusion.lexical_floor * sum(idf.values()) if fusion.lexical_floor else 0.0
    trust = 1.0
    if by_relevance and rowids and not phrases and fusion.coverage_high > 0:
        trust = lexical_trust(lexical_coverage(conn, idf, rowids), fusion.coverage_low, fusion.coverage_high)
    return scale, trust


def lexical_coverage(conn, idf: dict[str, float], rowids: Sequence[int], top: int = COVERAGE_TOP) -> float:
    """The largest share of the query's idf (``FastIndex.term_idf``: {stem: idf}) that one of
    the first ``top`` ``rowids`` (BM25's order) contains, in [0, 1]; 0 when no paper contains
    any query word."""
    from paperwire.index.fastlex import text_stems

    total = sum(idf.values())
    if total <= 0 or not rowids:
        return 0.0
    # Snowball keeps a word's first letters (three, but for "dying" -> "die" and the like),
    # so only tokens with a query stem's first three need stemming.
    heads = {t[:3] for t in idf}
    best = 0.0
    for title, abstract in sql.lexical_texts(conn, list(rowids)[:top]).values():
        stems = text_stems(f"{title} {abstract}", heads)
        best = max(best, sum(v for t, v in idf.items() if t in stems) / total)
    return best


def lexical_trust(coverage: float, low: float, high: float) -> float:
    """The lexical weight's multiplier: 0 at or under ``low``, 1 from ``high`` on, linear
    between; always 1 when the gate is off (``high <= 0``)."""
    if high <= 0:
        return 1.0
    if high <= low:
        return 1.0 if coverage >= high else 0.0
    return min(1.0, max(0.0, (coverage - low) / (high - low)))


def papers_with_every_word(conn, words: Sequence[str], rowids: Sequence[int]) -> list[int]:
    """The ``rowids`` (order kept) whose title or abstract holds every one of ``words``, by
    stem as the lexical index matches them. All of ``rowids`` when ``words`` is empty."""
    from paperwire.index.fastlex import stem_words, text_stems

    wanted = set(stem_words(words))
    if not wanted:
        return list(rowids)
    heads = {t[:3] for t in wanted}
    texts = sql.lexical_texts(conn, rowids)
    return [r for r in rowids if r in texts and wanted <= text_stems(" ".join(texts[r]), heads)]
