"""Misspelt queries against their correctly spelt originals, through the product's search().

    python bench/typo_eval.py --db DEMO.db [--queries bench/seed_queries.jsonl ...] [--typos 1] [--seed 7]

Every query of the judged demo sets gets ``--typos`` of its content words (5+ letters, not
stopwords) misspelt the way people mistype: two neighbouring letters swapped, a letter dropped,
doubled or replaced by a keyboard neighbour (seeded, so every tree gets the same typos). The
issue's bar: a misspelt query's top 3 should be mostly (2 of 3) the correctly spelt query's
top 5. Reported: the share of queries meeting it, the mean overlap, and how often search ran
the corrected query ("showing results for") or offered it ("did you mean"), and how often that
correction is exactly the spelt query. A typo that
makes another real word ("form" for "from") is kept: search cannot know, and it counts.
To compare trees: ``PYTHONPATH=/tmp/old python bench/typo_eval.py ...`` from outside the repo.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours(ch: str) -> str:
    for row in KEYBOARD:
        i = row.find(ch)
        if i >= 0:
            return row[max(0, i - 1) : i] + row[i + 1 : i + 2]
    return ""


def misspell(word: str, rng: random.Random) -> str:
    """One typing slip in a word of 5+ letters (never its first letter: people rarely miss it)."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "double", "neighbour"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    near = _neighbours(word[i]) or word[i]
    return word[:i] + rng.choice(near) + word[i + 1 :]


def corrupt(query: str, n: int, rng: random.Random, stopwords) -> str | None:
    words = [m for m in re.finditer(r"[a-z]{5,}", query) if m.group(0) not in stopwords]
    if not words:
        return None
    picked = sorted(rng.sample(words, min(n, len(words))), key=lambda m: m.start())
    out, pos = [], 0
    for m in picked:
        out += [query[pos : m.start()], misspell(m.group(0), rng)]
        pos = m.end()
    return "".join(out) + query[pos:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, type=Path)
    here = Path(__file__).resolve().parent
    ap.add_argument("--queries", nargs="*", type=Path, default=sorted(here.glob("seed_queries*.jsonl")))
    ap.add_argument("--typos", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--show", action="store_true", help="print each query that misses the bar")
    args = ap.parse_args()
    from paperwire.index.query import STOPWORDS
    from paperwire.index.search import search
    from paperwire.store.db import connect

    conn = connect(args.db)
    rng = random.Random(args.seed)
    n = met = corrected = offered = restored = 0
    overlap = 0.0
    for f in args.queries:
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            good = json.loads(line)["query"].lower()
            bad = corrupt(good, args.typos, rng, STOPWORDS)
            if bad is None or bad == good:
                continue
            right = [h.rowid for h in search(conn, good, mode=args.mode, limit=5, with_snippets=False).hits]
            res = search(conn, bad, mode=args.mode, limit=5, with_snippets=False)
            got = [h.rowid for h in res.hits][:3]
            share = len(set(got) & set(right)) / max(1, min(3, len(right)))
            n += 1
            overlap += share
            met += len(set(got) & set(right)) >= min(2, len(right))
            corrected += res.corrected_from is not None
            offered += res.suggestion is not None
            fixed = res.query if res.corrected_from is not None else res.suggestion
            restored += fixed is not None and fixed.lower() == good
            if args.show and len(set(got) & set(right)) < min(2, len(right)):
                print(f"  miss: {bad!r} (notes: {res.notes})")
    print(f"{n} misspelt queries ({args.typos} typo(s) each, seed {args.seed}, {args.mode}): top 3 mostly in the "
          f"spelt query's top 5 for {met / n:.1%}; mean overlap {overlap / n:.3f}; searched corrected {corrected / n:.1%}, "
          f"'did you mean' {offered / n:.1%}; the spelt query given back exactly {restored / n:.1%}")


if __name__ == "__main__":
    main()
