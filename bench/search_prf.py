"""Pseudo-relevance feedback on the semantic side of the shipped hybrid fusion, scored offline.

    python bench/search_prf.py ../shared/bench/scifact --scratch /tmp/h6/sf2.db [--demo DEMO.db] [--choose K,BETA]

The scratch database is a ``paperwire eval`` one (indexed, passages included). For every
query the product's own parts give the candidates once: tantivy's top 50 (BM25), the 50
nearest papers, each candidate's exact cosine and best sentence cosine, and the lexical
floor (``FastIndex.ideal_score``). The shipped fusion (``fuse``) is checked against the
product's ``paperwire eval`` figure, then each setting re-scores the same candidates:

* **Rocchio on the fused list**: the query vector moves towards the mean vector of the
  fused top ``k`` papers, ``q' = normalise(q + beta * normalise(mean))``, and every
  candidate's paper and sentence cosines are recomputed with ``q'`` (no new candidates, so
  the extra CPU is one more product over ~100 paper vectors and their sentences).
* ``--expand``: the 50 papers nearest to ``q'`` join the candidates too.

Settings are chosen on SciFact train (and, with ``--demo``, checked on our own demo query
sets, bench/seed_queries*.jsonl); test is printed only for ``--choose``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_eval import ndcg10  # noqa: E402


def _norm(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class Candidates:
    """One query's candidates and everything the fusion needs to re-score them."""

    def __init__(self, conn, text: str, emb, view, fast, fusion, expand: bool):
        from paperwire.index.lexical import lexical_search
        from paperwire.index.query import parse_query
        from paperwire.index.resultset import no_match_cosine
        from paperwire.index.semantic import encode_query
        from paperwire.store import passages as psql

        pq = parse_query(text[:250])
        self.words = pq.words
        self.q = encode_query(emb, pq.text or " ".join(pq.words))
        self.lex = lexical_search(conn, pq, limit=fusion.pool)
        self.sem = view.top(self.q, fusion.pool)
        self.view = view
        self.threshold = no_match_cosine(emb) or -1.0
        self.scale = fusion.lexical_floor * fast.ideal_score(pq.words) if fusion.lexical_floor else 0.0
        self.fusion = fusion
        self.conn, self.model, self.psql = conn, emb.name, psql
        self.expand = expand
        self._load([r for r, _ in self.lex] + [r for r, _ in self.sem])

    def _load(self, rowids):
        rowids = list(dict.fromkeys(int(r) for r in rowids))
        found, vecs = self.view.vectors_for(rowids)
        self.rows = found
        self.vecs = np.asarray(vecs, np.float32)
        self.sent = {}  # rowid -> (n, dim) float32 sentence vectors, scaled back from int8
        for rowid, n, dim, blob in self.psql.passage_rows(self.conn, self.model, found):
            if n:
                scales = np.frombuffer(blob[: 4 * n], dtype="<f4")
                ints = np.frombuffer(blob[4 * n : 4 * n + n * dim], dtype=np.int8).reshape(n, dim)
                self.sent[rowid] = ints.astype(np.float32) * scales[:, None]

    def ranking(self, q: np.ndarray, sem_list=None, trust: float = 1.0, passage_weight=None) -> list[int]:
        """The shipped fusion of these candidates for query vector ``q`` (``passage_weight``:
        another weight of the best sentence's cosine than the shipped one)."""
        from paperwire.index.hybrid import fuse

        cos = dict(zip(self.rows, (self.vecs @ q).tolist()))
        w = self.fusion.passage_weight if passage_weight is None else passage_weight

        def rescore(c):
            out = dict(c)
            for r in c:
                s = self.sent.get(r)
                if s is not None:
                    out[r] = (1 - w) * c[r] + w * float((s @ q).max())
            return out, self.fusion.passage_alpha

        sem = sem_list if sem_list is not None else [(r, cos[r]) for r, _ in self.sem if r in cos]
        ranked = fuse(self.lex, sem, self.fusion, cosine_of=lambda rs: {r: cos[r] for r in rs if r in cos},
                      rescore=rescore, lexical_scale=self.scale, lexical_trust=trust)
        allowed = {r for r, _ in self.lex} | {r for r, c in sem if c >= self.threshold}
        return [r for r, _ in ranked if r in allowed][:10]

    def prf(self, k: int, beta: float) -> list[int]:
        base = self.ranking(self.q)
        if beta <= 0 or not base:
            return base
        pos = {r: i for i, r in enumerate(self.rows)}
        top = [pos[r] for r in base[:k] if r in pos]
        q2 = _norm(self.q + beta * _norm(self.vecs[top].mean(axis=0)))
        sem = None
        if self.expand:
            extra = self.view.top(q2, self.fusion.pool)
            self._load(self.rows + [r for r, _ in extra])
            cos = dict(zip(self.rows, (self.vecs @ q2).tolist()))
            sem = sorted(((r, cos[r]) for r in {r for r, _ in self.sem} | {r for r, _ in extra} if r in cos),
                         key=lambda t: -t[1])[: self.fusion.pool]
        return self.ranking(q2, sem)


def collect(conn, queries: dict[str, str], fusion, expand: bool):
    from paperwire.index.fastlex import fast_ready
    from paperwire.index.semantic import get_query_index, resolve_embedder

    emb, _ = resolve_embedder(conn, None)
    view = get_query_index(conn, emb.name)
    fast = fast_ready(conn)
    assert fast is not None, "the scratch database has no tantivy index beside it"
    return {qid: Candidates(conn, t, emb, view, fast, fusion, expand) for qid, t in queries.items()}


def scifact(beir: Path, scratch: Path, split: str, fusion, expand: bool):
    from paperwire.sources.beir import load_qrels, load_queries
    from paperwire.store.db import connect

    conn = connect(scratch)
    qrels = load_qrels(beir, split)
    allq = load_queries(beir)
    ids = {int(r): pid for r, pid in conn.execute("SELECT id, paper_id FROM papers")}
    by_pid = {v: k for k, v in ids.items()}
    cands = collect(conn, {q: allq[q] for q in qrels if q in allq}, fusion, expand)
    rels = {q: {by_pid[d]: g for d, g in r.items() if d in by_pid and g > 0} for q, r in qrels.items()}
    return cands, rels


def demo_sets(demo: Path, fusion, expand: bool):
    from paperwire.model import collapse_ws
    from paperwire.store.db import connect

    conn = connect(demo)
    by_title: dict[str, list[int]] = {}
    for rowid, title in conn.execute("SELECT id, title FROM papers"):
        by_title.setdefault(collapse_ws(title).lower(), []).append(int(rowid))
    out = {}
    here = Path(__file__).resolve().parent
    for f in sorted(here.glob("seed_queries*.jsonl")):
        qs = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        texts = {str(i): q["query"] for i, q in enumerate(qs)}
        rels = {str(i): {r: int(g) for t, g in q["relevant"].items() for r in by_title.get(collapse_ws(t).lower(), [])}
                for i, q in enumerate(qs)}
        out[f.stem] = (collect(conn, texts, fusion, expand), rels)
    return out


def mean_ndcg(cands, rels, k, beta) -> float:
    return float(np.mean([ndcg10(c.prf(k, beta), rels[q]) for q, c in cands.items()]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--demo", type=Path)
    ap.add_argument("--ks", default="3,5,10")
    ap.add_argument("--betas", default="0,0.1,0.2,0.3,0.5,0.8")
    ap.add_argument("--expand", action="store_true")
    ap.add_argument("--choose", default=None, help="K,BETA whose SciFact test to print")
    args = ap.parse_args()
    from paperwire.index.hybrid import DEFAULT_FUSION

    fusion = DEFAULT_FUSION
    train, rtrain = scifact(args.beir, args.scratch, "train", fusion, args.expand)
    demo = demo_sets(args.demo, fusion, args.expand) if args.demo else {}
    print(f"anchor (shipped fusion, offline): SciFact train {mean_ndcg(train, rtrain, 1, 0):.4f}"
          + "".join(f", {name} {mean_ndcg(c, r, 1, 0):.4f}" for name, (c, r) in demo.items()), flush=True)
    for k in [int(x) for x in args.ks.split(",")]:
        for beta in [float(x) for x in args.betas.split(",") if float(x) > 0]:
            print(f"k {k} beta {beta}: SciFact train {mean_ndcg(train, rtrain, k, beta):.4f}"
                  + "".join(f", {name} {mean_ndcg(c, r, k, beta):.4f}" for name, (c, r) in demo.items()), flush=True)
    if args.choose:
        k, beta = args.choose.split(",")
        test, rtest = scifact(args.beir, args.scratch, "test", fusion, args.expand)
        print(f"test: anchor {mean_ndcg(test, rtest, 1, 0):.4f}, chosen k {k} beta {beta} "
              f"{mean_ndcg(test, rtest, int(k), float(beta)):.4f}")


if __name__ == "__main__":
    main()
