"""Calibrate the "nothing matches" threshold: the best cosine of real queries against that of
gibberish and off-topic ones, on SciFact (train claims) and on the demo corpus.

    python bench/search_nomatch.py ../shared/bench/scifact --scratch /tmp/pwg/sf.db --demo /tmp/pwg/demo/minilm.db

A query is emptied only when it has *no lexical match* and its best cosine is below the
threshold, so the numbers that matter are: real queries without a lexical match (they must
stay above), and junk without a lexical match (it should fall below).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# Written for this calibration: keyboard mashes, made-up words, and off-topic requests
# with no counterpart in a corpus of research papers.
JUNK = [
    "xyzzyqwerty plugh", "asdfgh jkl", "qwxz vbnm", "blorf snargle wibble", "zzzz yyyy", "lorem ipsum dolor sit amet",
    "frobnicate the glorbax", "hjkl hjkl hjkl", "aaaaaaaa", "qwertyuiop", "flibbertigibbet wombat", "mxyzptlk",
    "best pizza near me", "chocolate cake recipe", "cheap flights to lisbon", "taylor swift tour dates",
    "how to tie a tie", "football scores tonight", "buy used car", "horoscope for leo", "knitting patterns scarf",
    "lyrics of yesterday beatles", "weather tomorrow berlin", "funny cat videos", "wedding dress ideas",
]
# Plain research needs for the demo corpus (ML papers and 2007 arXiv physics/math), some
# paraphrased so they share few words with the papers.
REAL_DEMO = [
    "chain of thought", "retrieval augmented generation", "mixture of experts inference", "concept bottleneck",
    "quantum entanglement", "dark matter halo", "graph neural networks", "teaching models to reason step by step",
    "making large models cheaper to run", "finding documents to ground answers", "black hole thermodynamics",
    "speech recognition", "image generation with diffusion", "robot manipulation policies", "protein structure",
    "few examples in the prompt", "superconductivity", "number theory primes", "neutrino oscillations",
    "aligning language models with human preferences",
]


def best_cosines(conn, emb, texts):
    from paperwire.index.lexical import lexical_search
    from paperwire.index.query import QueryError, parse_query
    from paperwire.index.semantic import get_query_index

    idx = get_query_index(conn, emb.name)
    vecs = emb.encode(texts)
    out = []
    for t, v in zip(texts, vecs):
        try:
            pq = parse_query(t[:250])
            lex = bool(lexical_search(conn, pq, limit=1))
        except QueryError:
            lex = False
        out.append((t, float(idx.top(v, 1)[0][1]), lex))
    return out


def summary(name, rows):
    c = np.array([r[1] for r in rows])
    nolex = [r for r in rows if not r[2]]
    q = np.percentile(c, [0, 1, 5, 50]).round(3).tolist()
    print(f"{name}: n={len(rows)} best-cosine min/p1/p5/median {q}, max {c.max():.3f}; "
          f"without a lexical match: {len(nolex)}" + (f" (best cosines {sorted(round(r[1], 3) for r in nolex)[:12]})" if nolex else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", type=Path, required=True)
    ap.add_argument("--demo", type=Path)
    args = ap.parse_args()
    from paperwire.index.embeddings import get_embedder
    from paperwire.index.evaluate import prepare
    from paperwire.sources.beir import load_qrels, load_queries
    from paperwire.store.db import connect

    emb = get_embedder("auto")
    conn = prepare(args.beir, args.scratch, embedder=emb)
    queries = load_queries(args.beir)
    train = [queries[q] for q in load_qrels(args.beir, "train") if q in queries]
    summary("scifact train claims", best_cosines(conn, emb, train))
    junk = best_cosines(conn, emb, JUNK)
    summary("junk on scifact", junk)
    if args.demo:
        dconn = connect(args.demo)
        real = best_cosines(dconn, emb, REAL_DEMO)
        summary("real on demo", real)
        djunk = best_cosines(dconn, emb, JUNK)
        summary("junk on demo", djunk)
        for t, c, lex in sorted(djunk + junk, key=lambda r: -r[1])[:8]:
            print(f"  highest junk: {c:.3f} lexical={lex} {t!r}")
        for t, c, lex in sorted(real, key=lambda r: r[1])[:5]:
            print(f"  lowest real on demo: {c:.3f} lexical={lex} {t!r}")
    print(json.dumps({"embedder": emb.name}))


if __name__ == "__main__":
    main()
