"""A query-level gate on the lexical weight: trust BM25 less when even its best matches
cover little of the query, scored offline on the shipped fusion's candidates.

    python bench/coverage_gate.py ../shared/bench/scifact --scratch SF.db --demo DEMO.db \\
        [--lows 0.2,0.25,0.3] [--highs 0.35,0.4,0.5] [--choose LOW,HIGH]

Coverage: the share of the query's idf (its words' Snowball stems that some paper contains)
that the best of tantivy's top 5 matches contains. The lexical weight is multiplied by
``clip((coverage - LOW) / (HIGH - LOW), 0, 1)``: 0 under LOW (the "matches" share a common
word or two with the query), full weight from HIGH on. Candidates and the shipped fusion
come from bench/search_prf.py. Chosen on SciFact train and our two demo query sets
(bench/seed_queries*.jsonl); SciFact test is printed only for ``--choose``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_prf import demo_sets, ndcg10, scifact  # noqa: E402


def attach_coverage(cands: dict, absent: float = 0.0) -> None:
    """Set ``c.coverage`` on every query's candidates (the product's own function). With
    ``absent`` > 0, a query word that no paper contains counts too, at ``absent`` times the
    idf of a word one paper contains: the lexical side cannot cover it."""
    import math

    from paperwire.index.coverage import lexical_coverage
    from paperwire.index.fastlex import fast_ready, stem_words

    for c in cands.values():
        fast = fast_ready(c.conn)
        idf = fast.term_idf(c.words)
        if absent > 0:
            n = fast.index.searcher().num_docs
            top = math.log(1.0 + (n - 0.5) / 1.5)
            idf.update({s: absent * top for s in set(stem_words(c.words)) if s not in idf})
        c.coverage = lexical_coverage(c.conn, idf, [r for r, _ in c.lex])


# --untrusted-weight: the best sentence's weight where the lexical side weighs nothing,
# interpolated to the shipped weight at full trust (None: the shipped weight throughout).
UNTRUSTED_WEIGHT = None


def gated(c, low: float, high: float) -> list[int]:
    g = 1.0 if high <= low else float(np.clip((c.coverage - low) / (high - low), 0.0, 1.0))
    w = None
    if UNTRUSTED_WEIGHT is not None:
        w = g * c.fusion.passage_weight + (1 - g) * UNTRUSTED_WEIGHT
    return c.ranking(c.q, trust=g, passage_weight=w)


def mean(cands, rels, low, high) -> float:
    return float(np.mean([ndcg10(gated(c, low, high), rels[q]) for q, c in cands.items()]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--demo", required=True, type=Path)
    ap.add_argument("--lows", default="0.15,0.2,0.25,0.3,0.35")
    ap.add_argument("--highs", default="0.3,0.35,0.4,0.45,0.5,0.6")
    ap.add_argument("--choose", default=None, help="LOW,HIGH whose SciFact test to print")
    ap.add_argument("--absent", type=float, default=0.0,
                    help="count query words no paper contains, at this times a df-1 word's idf")
    ap.add_argument("--untrusted-weight", type=float, default=None,
                    help="the best sentence's weight at lexical trust 0 (linear up to the shipped one at 1)")
    args = ap.parse_args()
    global UNTRUSTED_WEIGHT
    UNTRUSTED_WEIGHT = args.untrusted_weight
    from paperwire.index.hybrid import DEFAULT_FUSION

    sets = {"SciFact train": scifact(args.beir, args.scratch, "train", DEFAULT_FUSION, False)}
    sets.update(demo_sets(args.demo, DEFAULT_FUSION, False))
    for cands, _ in sets.values():
        attach_coverage(cands, args.absent)
    for name, (cands, _) in sets.items():
        cov = np.array([c.coverage for c in cands.values()])
        print(f"{name}: coverage p10/p25/p50/p75 " + "/".join(f"{v:.2f}" for v in np.percentile(cov, [10, 25, 50, 75])))
    print("no gate: " + ", ".join(f"{n} {mean(c, r, 0, 0):.4f}" for n, (c, r) in sets.items()), flush=True)
    for low in [float(x) for x in args.lows.split(",")]:
        for high in [float(x) for x in args.highs.split(",")]:
            if high <= low:
                continue
            print(f"low {low} high {high}: " + ", ".join(f"{n} {mean(c, r, low, high):.4f}" for n, (c, r) in sets.items()),
                  flush=True)
    if args.choose:
        low, high = (float(x) for x in args.choose.split(","))
        test, rtest = scifact(args.beir, args.scratch, "test", DEFAULT_FUSION, False)
        attach_coverage(test, args.absent)
        print(f"SciFact test: no gate {mean(test, rtest, 0, 0):.4f}, low {low} high {high} {mean(test, rtest, low, high):.4f}")


if __name__ == "__main__":
    main()
