"""Retrieval quality of the embedding backends: dense-only SciFact nDCG@10 (BEIR test split,
300 claims over 5,183 abstracts). Published anchor: all-MiniLM-L6-v2 dense 0.645.

    python bench/embed_quality.py [--backends onnx,onnx-fp32,torch] [--split test]

Document vectors are cached in ~/.cache/paperwire/bench/ (per backend) for reruns and for
bench/vectors_search.py. The "torch" backend (sentence-transformers fp32) is the in-run anchor.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np

from embed_common import machine, now, scifact_corpus, scifact_qrels, scifact_queries

CACHE = Path(os.environ.get("PAPERWIRE_BENCH_CACHE", Path.home() / ".cache" / "paperwire" / "bench"))


def ndcg_at_k(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & {d for d, r in rels.items() if r > 0}) / max(1, sum(r > 0 for r in rels.values()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="onnx,onnx-fp32,torch")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    from paperwire.index.embeddings import EmbedderUnavailable, get_embedder, paper_text

    corpus = scifact_corpus()
    doc_ids = [d["_id"] for d in corpus]
    texts = [paper_text(d["title"], d["text"]) for d in corpus]
    queries = scifact_queries()
    qrels = scifact_qrels(args.split)
    qids = [q for q in qrels if q in queries]
    print(f"# embed_quality  {now()}  {machine()}")
    print(f"SciFact {args.split}: {len(qids)} queries, {len(corpus)} documents; dense retrieval only\n")
    print("| backend | embedder name | nDCG@10 | recall@100 | doc encode s |")
    print("|---|---|---|---|---|")
    results = {}
    for backend in args.backends.split(","):
        try:
            emb = get_embedder(backend)
        except EmbedderUnavailable as exc:
            print(f"| {backend} | unavailable: {exc} | | | |")
            continue
        path = CACHE / f"scifact_{emb.name}.npy"
        t = time.perf_counter()
        if path.exists():
            dvecs = np.load(path)
            enc = "cached"
        else:
            dvecs = emb.encode(texts)
            enc = f"{time.perf_counter() - t:.0f}"
            CACHE.mkdir(parents=True, exist_ok=True)
            np.save(path, dvecs)
        qvecs = emb.encode([queries[q] for q in qids])
        scores = qvecs @ dvecs.T
        nd, rc = [], []
        for i, q in enumerate(qids):
            top = np.argsort(-scores[i])[:100]
            ranked = [doc_ids[j] for j in top]
            nd.append(ndcg_at_k(ranked, qrels[q]))
            rc.append(recall_at_k(ranked, qrels[q]))
        results[backend] = dvecs
        print(f"| {backend} | {emb.name} | {np.mean(nd):.4f} | {np.mean(rc):.4f} | {enc} |")
    names = list(results)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            cos = np.sum(results[names[i]] * results[names[j]], axis=1)
            print(f"\ncosine({names[i]}, {names[j]}) over the corpus: mean {cos.mean():.4f}, min {cos.min():.4f}")


if __name__ == "__main__":
    main()
