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


def attach_coverage(cands: dict) -> None:
    """Set ``c.coverage`` on every query's candidates (the product's own function)."""
    from paperwire.index.coverage import lexical_coverage
    from paperwire.index.fastlex import fast_ready

    for c in cands.values():
        fast = fast_ready(c.conn)
        c.coverage = lexical_coverage(c.conn, fast.term_idf(c.words), [r for r, _ in c.lex])


def gated(c, low: float, high: float) -> list[int]:
    g = 1.0 if high <= low else float(np.clip((c.coverage - low) / (high - low), 0.0, 1.0))
    return c.ranking(c.q, trust=g)


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
    args = ap.parse_args()
    from paperwire.index.hybrid import DEFAULT_FUSION

    sets = {"SciFact train": scifact(args.beir, args.scratch, "train", DEFAULT_FUSION, False)}
    sets.update(demo_sets(args.demo, DEFAULT_FUSION, False))
    for cands, _ in sets.values():
        attach_coverage(cands)
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
        attach_coverage(test)
        print(f"SciFact test: no gate {mean(test, rtest, 0, 0):.4f}, low {low} high {high} {mean(test, rtest, low, high):.4f}")


if __name__ == "__main__":
    main()
