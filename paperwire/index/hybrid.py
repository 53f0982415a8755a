"""Fusing lexical (BM25) and semantic (cosine) result lists.

Default: weighted score fusion. Each list's scores are scaled to [0, 1] by the best
score in that list (BM25 by its max, cosine by min-max over the candidate pool); every
candidate gets its exact cosine (vectors are in memory) and its BM25 (0 when it did
not match lexically), and the fused score is ``alpha * lex + (1 - alpha) * sem``.
Reciprocal rank fusion is kept for comparison. Parameters were tuned on SciFact
*train* only (bench/search_tune.py, BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FusionParams:
    method: str = "linear"   # "linear" | "rrf"
    alpha: float = 0.5       # weight of the lexical side (linear)
    rrf_k: int = 60          # RRF constant
    # Candidates taken from each side. Re-tuned 2026-12-01 on SciFact train through the
    # product path (limit 20): pool 50 0.7407 vs pool 100 0.7396 nDCG@10, so the smaller
    # pool is both the train-best and ~10 % less CPU per hybrid search (test: 0.7319 vs 0.7333).
    pool: int = 50
    # With passage vectors (paperwire.index.passages) the semantic score is the paper cosine
    # blended with the best sentence's, and the lexical side weighs a little less: the
    # train-best pair of SciFact's grid (alpha 0.4-0.55 x weight 0.3-0.85).
    passage_weight: float = 0.7
    passage_alpha: float = 0.45
    # Semantic mode re-orders its `pool` nearest by the same blend with this weight: 0.5 lifts
    # SciFact train 0.658 -> 0.685 and both our demo sets (0.641 -> 0.649, 0.573 -> 0.618);
    # 0.7 (train's best, 0.693) costs the plain demo queries 0.01 (BENCHMARKS.md, round 4).
    semantic_passage_weight: float = 0.5
    # BM25 is scaled by max(best BM25, lexical_floor x the query's ideal score (its words'
    # idf summed; FastIndex.ideal_score)) instead of by the best alone, so a best match on a
    # common word or two of a paraphrase stays a weak signal. 0: by the best alone. 0.6 is
    # the largest floor that costs neither SciFact train (0.7482 -> 0.7488) nor our plain
    # demo queries (0.8729 -> 0.8725), and it lifts our word-disjoint paraphrases 0.193 -> 0.267
    # (bench/lexical_floor.py; BENCHMARKS.md, "Search quality, round 3").
    lexical_floor: float = 0.6
    # The lexical weight times lexical_trust(coverage): 0 when the best of BM25's top 5
    # covers at most coverage_low of the query's idf, full from coverage_high on
    # (paperwire.index.coverage; high 0: off). 0.25 / 0.4 is the widest gate that costs
    # neither SciFact train (0.7492 -> 0.7487 offline) nor our plain demo queries (0.8725),
    # and it lifts our word-disjoint paraphrases 0.279 -> 0.445 (bench/coverage_gate.py;
    # BENCHMARKS.md, "Search quality, round 4").
    coverage_low: float = 0.25
    coverage_high: float = 0.4


DEFAULT_FUSION = FusionParams()


def _minmax(x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-9:
        return np.ones_like(x)
    return (x - lo) / (hi - lo)


def fuse(
    lexical: list[tuple[int, float]],
    semantic: list[tuple[int, float]],
    params: FusionParams = DEFAULT_FUSION,
    *,
    cosine_of=None,
    rescore=None,
    lexical_scale: float = 0.0,
    lexical_trust: float = 1.0,
) -> list[tuple[int, float]]:
    """Fused (rowid, score) best first.

    ``cosine_of(rowids) -> dict[rowid, cosine]`` fills in the semantic score of lexical
    candidates that the semantic list did not return (linear method). ``rescore(cosines)
    -> (semantic scores, alpha)``, when given, replaces every candidate's cosine by another
    semantic score (the passage blend) and names the lexical weight that goes with it.
    ``lexical_scale``: BM25 is divided by the larger of this and the best BM25.
    ``lexical_trust`` multiplies the lexical weight (:func:`paperwire.index.coverage.lexical_trust`).
    """
    if params.method == "rrf":
        scores: dict[int, float] = {}
        for w, lst in ((params.alpha, lexical), (1.0 - params.alpha, semantic)):
            for rank, (r, _) in enumerate(lst):
                scores[r] = scores.get(r, 0.0) + w / (params.rrf_k + rank + 1)
        return sorted(scores.items(), key=lambda t: (-t[1], t[0]))

    lex = dict(lexical)
    sem = dict(semantic)
    cand = list(dict.fromkeys([r for r, _ in lexical] + [r for r, _ in semantic]))
    if not cand:
        return []
    missing = [r for r in cand if r not in sem]
    if missing and cosine_of is not None:
        sem.update(cosine_of(missing))
    alpha = params.alpha
    if rescore is not None:
        sem, alpha = rescore({r: sem[r] for r in cand if r in sem})
    alpha *= lexical_trust
    lmax = max(max(lex.values()) if lex else 1.0, lexical_scale)
    lvec = np.array([lex.get(r, 0.0) / (lmax or 1.0) for r in cand], np.float64)
    svals = np.array([sem.get(r, np.nan) for r in cand], np.float64)
    if np.isnan(svals).all():
        svec = np.zeros(len(cand))
    else:
        floor = np.nanmin(svals)
        svals = np.where(np.isnan(svals), floor, svals)
        svec = _minmax(svals)
    fused = alpha * lvec + (1.0 - alpha) * svec
    order = np.argsort(-fused, kind="stable")
    return [(cand[i], float(fused[i])) for i in order]
