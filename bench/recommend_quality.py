"""Author-history benchmark for the "For you" model (issue 11).

    python bench/recommend_quality.py [--negatives 300] [--out results.json]

The shared arXiv files (2,000 CSV + 200 JSONL records) are imported into a store kept in
``~/.cache/paperwire/bench/recommend_quality/`` with paperwire's importer and indexed with the
real int8 MiniLM embedder (vectors are cached by content hash, so reruns embed nothing).
Readers are the authors with >= 3 papers, deduplicated by identical paper sets. Each of a
reader's papers in turn is held out; the rest is the library; the candidates are every other
paper. Features are title + abstract only, never author names. The held-out paper is the one
relevant answer: nDCG@10 = 1/log2(rank+1) within the top 10, Recall@10 = hit, MRR = 1/rank.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from embed_common import SHARED, machine, now

CACHE = Path(os.environ.get("PAPERWIRE_BENCH_CACHE", Path.home() / ".cache" / "paperwire" / "bench"))


def build_store():
    """The benchmark store (imported and indexed once, then reused)."""
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import get_embedder
    from paperwire.sources import import_files
    from paperwire.store.db import connect

    folder = CACHE / "recommend_quality"
    folder.mkdir(parents=True, exist_ok=True)
    conn = connect(folder / "store.db")
    files = [SHARED / "data" / "arxiv" / "arxiv-metadata-2000.csv", SHARED / "data" / "arxiv" / "arxiv-metadata-200.jsonl"]
    import_files(conn, files, progress=False)
    emb = get_embedder("onnx")
    t0 = time.perf_counter()
    update_index(conn, embedder=emb)
    return conn, emb, time.perf_counter() - t0


def readers(papers: list[dict]) -> list[list[int]]:
    """Paper index lists of the authors with >= 3 papers, one per distinct paper set."""
    from paperwire.model import normalize_title

    by_author: dict[str, set[int]] = {}
    for i, p in enumerate(papers):
        for a in p["authors"]:
            key = normalize_title(a)
            if key:
                by_author.setdefault(key, set()).add(i)
    sets = {tuple(sorted(s)) for s in by_author.values() if len(s) >= 3}
    return [list(s) for s in sorted(sets)]


def rank_of(scores: np.ndarray, target: int, cand_mask: np.ndarray) -> int:
    """1-based rank of ``target`` among the candidates (ties broken against the target)."""
    s = scores[target]
    return int(np.sum((scores >= s) & cand_mask)) if cand_mask[target] else 10**9


def _z(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v = x[mask]
    sd = float(v.std()) or 1.0
    return (x - float(v.mean())) / sd


_CLEAN = re.compile(r'["():\-]')


def title_query(titles: list[str]) -> str:
    return " ".join(_CLEAN.sub(" ", t) for t in titles)


class Methods:
    """Every scorer: ``score(name, lib, rng) -> scores over all papers`` (higher = better)."""

    def __init__(self, conn, papers, vecs, tfidf, trending_scores, negatives: int):
        self.conn, self.papers, self.vecs, self.tfidf = conn, papers, vecs, tfidf
        self.trending = trending_scores
        self.negatives = negatives
        self.row_pos = {p["id"]: i for i, p in enumerate(papers)}
        self._search_cache: dict[tuple[str, str], dict[int, float]] = {}

    # -- baselines
    def random(self, lib, rng):
        return rng.random(len(self.papers))

    def trending_(self, lib, rng):
        return self.trending

    def bm25_titles(self, lib, rng):
        from paperwire.index.lexical import lexical_search
        from paperwire.index.query import parse_query

        pq = parse_query(title_query([self.papers[i]["title"] for i in lib]), max_chars=10**6)
        out = np.zeros(len(self.papers))  # BM25 >= 0: no match = 0
        for rowid, score in lexical_search(self.conn, pq, limit=len(self.papers)):
            if rowid in self.row_pos:
                out[self.row_pos[rowid]] = score
        return out

    def bm25_terms(self, lib, rng):
        """BM25 of the library's distinctive words (what the product ships: see
        paperwire.recommend.lexical.profile_terms), through the product's lexical index."""
        from paperwire.index.lexical import lexical_search
        from paperwire.index.query import parse_query
        from paperwire.recommend.lexical import profile_terms

        terms = profile_terms([(self.papers[i]["title"], self.papers[i]["abstract"]) for i in lib])
        out = np.zeros(len(self.papers))  # BM25 >= 0: no match = 0
        if not terms:
            return out
        pq = parse_query(" ".join(terms), max_chars=10**6)
        for rowid, score in lexical_search(self.conn, pq, limit=len(self.papers)):
            if rowid in self.row_pos:
                out[self.row_pos[rowid]] = score
        return out

    def shipped(self, lib, rng):
        """paperwire.recommend.model's scorer, as the product runs it."""
        from paperwire.recommend.model import blend_scores, train

        neg = self._weak_negatives(lib, rng)
        model = train(self.vecs[lib], np.ones(len(lib)), self.vecs[neg])
        return blend_scores(model, self.vecs, self.bm25_terms(lib, rng))

    def shipped_lr(self, lib, rng):
        """The shipped LR alone (numpy Nesterov, vs scikit-learn's lbfgs above)."""
        from paperwire.recommend.model import train

        neg = self._weak_negatives(lib, rng)
        return train(self.vecs[lib], np.ones(len(lib)), self.vecs[neg]).linear(self.vecs)

    def product_search(self, lib, rng):
        """The product's hybrid search, one search per library title (as a reader would type
        them, within the 250-character limit), fused by reciprocal rank."""
        from paperwire.index.search import search

        out = np.zeros(len(self.papers))
        for i in lib:
            q = title_query([self.papers[i]["title"]])[:250].strip()
            key = ("hybrid", q)
            if key not in self._search_cache:
                res = search(self.conn, q, mode="hybrid", limit=100, with_snippets=False, with_title_html=False)
                self._search_cache[key] = {h.rowid: 1.0 / (60 + r) for r, h in enumerate(res.hits, 1)}
            for rowid, s in self._search_cache[key].items():
                if rowid in self.row_pos:
                    out[self.row_pos[rowid]] += s
        return out

    # -- embedding models
    def centroid(self, lib, rng):
        c = self.vecs[lib].mean(axis=0)
        return self.vecs @ (c / (np.linalg.norm(c) or 1.0))

    def knn_max(self, lib, rng):
        return (self.vecs @ self.vecs[lib].T).max(axis=1)

    def knn_mean_top(self, lib, rng):
        sims = self.vecs @ self.vecs[lib].T
        k = min(3, sims.shape[1])
        return np.sort(sims, axis=1)[:, -k:].mean(axis=1)

    def _weak_negatives(self, lib, rng):
        pool = np.setdiff1d(np.arange(len(self.papers)), lib)
        return rng.choice(pool, size=min(self.negatives, len(pool)), replace=False)

    def logreg(self, lib, rng, C: float = 1.0):
        from sklearn.linear_model import LogisticRegression

        neg = self._weak_negatives(lib, rng)
        X = np.vstack([self.vecs[lib], self.vecs[neg]])
        y = np.r_[np.ones(len(lib)), np.zeros(len(neg))]
        m = LogisticRegression(C=C, class_weight="balanced", max_iter=200).fit(X, y)
        return self.vecs @ m.coef_[0]

    def logreg_c10(self, lib, rng):
        return self.logreg(lib, rng, C=10.0)

    def tfidf_svm(self, lib, rng):
        """arxiv-sanity-lite: LinearSVC(C=0.01, balanced) over TF-IDF, every other paper a negative."""
        from sklearn.svm import LinearSVC

        y = np.zeros(len(self.papers))
        y[lib] = 1
        m = LinearSVC(C=0.01, class_weight="balanced", max_iter=10000, tol=1e-6).fit(self.tfidf, y)
        return m.decision_function(self.tfidf)

    # -- blends (z-scored over the candidates)
    def blend(self, parts, lib, rng, mask):
        return sum(w * _z(getattr(self, n)(lib, rng), mask) for n, w in parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--negatives", type=int, default=300, help="weak negatives per reader (random unrated papers)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated name parts: run only those methods")
    args = ap.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer

    from paperwire import rank
    from paperwire.store import embeddings as emb_store
    from paperwire.store.papers import iter_papers

    conn, emb, index_s = build_store()
    papers = list(iter_papers(conn))
    rowids = [p["id"] for p in papers]
    ids, mat = emb_store.paper_vectors(conn, emb.name, include_hidden=True)
    at = {int(r): i for i, r in enumerate(ids)}
    papers = [p for p in papers if p["id"] in at]  # every paper is embedded; guard anyway
    rowids = [p["id"] for p in papers]
    vecs = mat[[at[r] for r in rowids]].astype(np.float32)
    texts = [f"{p['title']}. {p['abstract']}" for p in papers]
    # arxiv-sanity-lite's vectoriser settings.
    tfidf = TfidfVectorizer(input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
                            lowercase=True, analyzer="word", stop_words="english", token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
                            ngram_range=(1, 2), max_features=20000, norm="l2", use_idf=True, smooth_idf=True,
                            sublinear_tf=True, max_df=1.0, min_df=1).fit_transform(texts)
    pos = {r: i for i, r in enumerate(rowids)}
    trend = np.zeros(len(papers))
    for j, p in enumerate(rank.trending(conn, window_days=100000, since="0000-01-01", limit=len(papers))):
        trend[pos[p["id"]]] = len(papers) - j
    rs = readers(papers)
    m = Methods(conn, papers, vecs, tfidf, trend, args.negatives)

    singles = {
        "random": m.random, "trending": m.trending_, "BM25 of library titles": m.bm25_titles,
        "product hybrid search on library titles": m.product_search,
        "embedding centroid": m.centroid, "kNN max-similarity": m.knn_max, "kNN mean of top-3": m.knn_mean_top,
        "logistic regression (emb, C=1)": m.logreg, "logistic regression (emb, C=10)": m.logreg_c10,
        "linear SVM on TF-IDF (arxiv-sanity-lite)": m.tfidf_svm,
    }
    blends = {
        "blend: LR + kNN max": [("logreg", 1.0), ("knn_max", 1.0)],
        "blend: LR + TF-IDF SVM": [("logreg", 1.0), ("tfidf_svm", 1.0)],
        "blend: kNN max + TF-IDF SVM": [("knn_max", 1.0), ("tfidf_svm", 1.0)],
        "blend: LR + kNN max + TF-IDF SVM": [("logreg", 1.0), ("knn_max", 1.0), ("tfidf_svm", 1.0)],
        "blend: centroid + kNN max + TF-IDF SVM": [("centroid", 1.0), ("knn_max", 1.0), ("tfidf_svm", 1.0)],
        "blend: LR + kNN max + BM25 titles": [("logreg", 1.0), ("knn_max", 1.0), ("bm25_titles", 0.5)],
        "blend: LR + kNN max + BM25 library terms": [("logreg", 1.0), ("knn_max", 1.0), ("bm25_terms", 1.0)],
        "blend: LR + kNN max + 0.5 BM25 library terms": [("logreg", 1.0), ("knn_max", 1.0), ("bm25_terms", 0.5)],
    }
    singles["BM25 of library terms"] = m.bm25_terms
    singles["shipped LR only (numpy, 40 Nesterov steps)"] = m.shipped_lr
    singles["shipped (paperwire.recommend)"] = m.shipped
    names = list(singles) + list(blends)
    if args.only:
        names = [n for n in names if any(w.lower() in n.lower() for w in args.only.split(","))]
    sums = {n: np.zeros(3) for n in names}
    secs = {n: 0.0 for n in names}
    cases = 0
    n = len(papers)
    for reader in rs:
        for held in reader:
            lib = np.array([i for i in reader if i != held])
            mask = np.ones(n, dtype=bool)
            mask[lib] = False
            for name in names:
                rng = np.random.default_rng(args.seed + cases)  # same negatives for every method
                t0 = time.perf_counter()
                if name in singles:
                    scores = singles[name](lib, rng)
                else:
                    scores = m.blend(blends[name], lib, rng, mask)
                secs[name] += time.perf_counter() - t0
                r = rank_of(np.asarray(scores, dtype=np.float64), held, mask)
                sums[name] += [1 / math.log2(r + 1) if r <= 10 else 0.0, 1.0 if r <= 10 else 0.0, 1 / r]
            cases += 1
    print(f"# recommend_quality  {now()}  {machine()}")
    print(f"{n} papers, {len(rs)} readers (authors with >= 3 papers, distinct paper sets), {cases} held-out cases; "
          f"embedder {emb.name} (index build {index_s:.1f} s, cached vectors reused); weak negatives {args.negatives}\n")
    print("| method | nDCG@10 | Recall@10 | MRR | ms/case |")
    print("|---|---|---|---|---|")
    res = {}
    for name in names:
        a = sums[name] / cases
        res[name] = {"ndcg10": round(a[0], 4), "recall10": round(a[1], 4), "mrr": round(a[2], 4),
                     "ms": round(1000 * secs[name] / cases, 2)}
        print(f"| {name} | {a[0]:.4f} | {a[1]:.4f} | {a[2]:.4f} | {res[name]['ms']:.1f} |")
    if "BM25 of library titles" not in res or "embedding centroid" not in res:
        return
    base = max(res["BM25 of library titles"]["ndcg10"], res["embedding centroid"]["ndcg10"])
    print(f"\nbest of BM25-of-titles and centroid: {base:.4f}; +10% target: {base * 1.1:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"cases": cases, "readers": len(rs), "papers": n, "results": res}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
