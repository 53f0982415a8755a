"""Term proximity on the lexical side (a sequential-dependence-style boost), scored offline
on the shipped fusion.

    python bench/search_proximity.py ../shared/bench/scifact --scratch SF.db --demo DEMO.db \\
        [--boosts 0.25,0.5,1] [--slops 0,2,8] [--choose BOOST,SLOP]

BM25 scores each query word alone: "vitamin d deficiency" ranks a paper that says "vitamin"
in one sentence and "deficiency" in another like one that names the condition. The sequential
dependence model (Metzler & Croft, 2005) adds, for each pair of adjacent query words, a
phrase match within a window. Here each adjacent pair of the query's content words becomes an
optional tantivy phrase clause ``"w1 w2"~SLOP^BOOST`` beside the words (only for queries of
two or more words and no quoted phrase, as the product would build them). Every other part of
the product is unchanged: the candidates are tantivy's top 50 with those clauses, then the
shipped fusion, lexical floor and coverage gate (bench/coverage_gate.py's candidates).
Chosen on SciFact train and our demo query sets; SciFact test is printed only for ``--choose``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coverage_gate import attach_coverage, mean  # noqa: E402
from search_prf import demo_sets, scifact  # noqa: E402

LOW, HIGH = 0.25, 0.4  # the shipped gate (FusionParams.coverage_low / coverage_high)


def patch_proximity(boost: float, slop: int) -> None:
    """Make ``FastIndex._query`` add the adjacent-pair phrase clauses (boost 0: off)."""
    from paperwire.index import fastlex

    original = getattr(fastlex.FastIndex, "_original_query", None) or fastlex.FastIndex._query
    fastlex.FastIndex._original_query = original

    def query(self, words, **kw):
        if boost <= 0 or len(words) < 2 or kw.get("phrases"):
            return original(self, words, **kw)
        import tantivy

        base = original(self, words, **kw)
        pairs = " ".join(f'"{a} {b}"~{slop}^{boost}' for a, b in zip(words, words[1:]) if a != b)
        if not pairs or base is None:
            return base
        near = self.index.parse_query(pairs, ["text"])
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, base), (tantivy.Occur.Should, near)])

    fastlex.FastIndex._query = query


def evaluate(beir: Path, scratch: Path, demo: Path, split: str = "train") -> dict[str, float]:
    from paperwire.index.hybrid import DEFAULT_FUSION

    sets = {f"SciFact {split}": scifact(beir, scratch, split, DEFAULT_FUSION, False)}
    if split == "train":
        sets.update(demo_sets(demo, DEFAULT_FUSION, False))
    out = {}
    for name, (cands, rels) in sets.items():
        attach_coverage(cands)
        out[name] = mean(cands, rels, LOW, HIGH)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--demo", required=True, type=Path)
    ap.add_argument("--boosts", default="0.25,0.5,1")
    ap.add_argument("--slops", default="0,2,8")
    ap.add_argument("--choose", default=None, help="BOOST,SLOP whose SciFact test to print")
    args = ap.parse_args()
    settings = [(0.0, 0)] + [(float(b), int(s)) for b in args.boosts.split(",") for s in args.slops.split(",")]
    for boost, slop in settings:
        patch_proximity(boost, slop)
        got = evaluate(args.beir, args.scratch, args.demo)
        print(f"boost {boost} slop {slop}: " + ", ".join(f"{k} {v:.4f}" for k, v in got.items()), flush=True)
    if args.choose:
        boost, slop = args.choose.split(",")
        for b, s in ((0.0, 0), (float(boost), int(slop))):
            patch_proximity(b, s)
            got = evaluate(args.beir, args.scratch, args.demo, "test")
            print(f"boost {b} slop {s}: SciFact test {got['SciFact test']:.4f}", flush=True)


if __name__ == "__main__":
    main()
