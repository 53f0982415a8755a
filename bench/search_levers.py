"""Search-quality levers on a BEIR set (tune on train, report test): passage-level reranking,
query-dependent fusion weights, pseudo-relevance feedback.

    python bench/search_levers.py ../shared/bench/scifact --scratch /tmp/pwg/sf.db [--embed-only]

Passages are each abstract's sentences, prefixed by the title (claims tend to match one
sentence, not the abstract's average). Their vectors go into the product's embedding cache
of the scratch database (model ``<embedder>:sent``, keyed by the passage text's hash), so
a rerun embeds nothing. Candidate lists (BM25 top 50, MiniLM top 50, exact cosines) are
computed once per query and every setting is scored offline, as bench/search_tune.py does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np

from paperwire.index.evaluate import ndcg_at_k, prepare, recall_at_k
from paperwire.sources.beir import load_qrels, load_queries

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def passages(title: str, abstract: str, max_chars: int = 400) -> list[str]:
    """Title-prefixed sentences (long sentences cut at ``max_chars``; very short ones merged)."""
    sents, cur = [], ""
    for s in _SENT.split(abstract or ""):
        s = s.strip()
        if s:
            cur = f"{cur} {s}".strip()
            if len(cur) >= 60:  # a very short sentence joins the next one
                sents.append(cur)
                cur = ""
    if cur:
        sents.append(cur)
    sents = [s for s in dict.fromkeys(sents) if s]
    return [f"{title}. {s[:max_chars]}" for s in sents] or [title or ""]


def h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def embed_passages(conn, emb, *, batch: int = 256) -> tuple[dict[int, np.ndarray], dict]:
    """{paper rowid: (n_passages, dim) matrix}, embedding only passages not cached yet."""
    from paperwire.store import embeddings as emb_store

    model = f"{emb.name}:sent"
    rows = conn.execute("SELECT id, title, abstract FROM papers").fetchall()
    per = {r[0]: passages(r[1], r[2]) for r in rows}
    allp = list({h(p): p for ps in per.values() for p in ps}.items())
    have = emb_store.get_embeddings(conn, model, [k for k, _ in allp])
    todo = [(k, p) for k, p in allp if k not in have]
    t0 = time.perf_counter()
    for i in range(0, len(todo), batch):
        part = todo[i : i + batch]
        vecs = emb.encode([p for _, p in part])
        emb_store.put_embeddings(conn, model, [k for k, _ in part], vecs)
        have.update(zip([k for k, _ in part], vecs))
        if i % (batch * 20) == 0:
            print(f"  embedded {i + len(part)}/{len(todo)} passages", flush=True)
    stats = {"passages": len(allp), "embedded": len(todo), "embed_s": round(time.perf_counter() - t0, 1),
             "per_paper": round(len(allp) / max(1, len(per)), 2)}
    return {r: np.stack([have[h(p)] for p in ps]) for r, ps in per.items()}, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--embed-only", action="store_true")
    args = ap.parse_args()
    from paperwire.index.embeddings import get_embedder
    from paperwire.index.fastlex import fast_ready
    from paperwire.index.query import QueryError, parse_query
    from paperwire.index.semantic import get_query_index

    emb = get_embedder("auto")
    conn = prepare(args.beir, args.scratch, embedder=emb)
    pvecs, pstats = embed_passages(conn, emb)
    print(json.dumps(pstats), flush=True)
    if args.embed_only:
        return
    queries = load_queries(args.beir)
    splits = {s: load_qrels(args.beir, s) for s in ("train", "test")}
    pid = {r[0]: r[1] for r in conn.execute("SELECT id, paper_id FROM papers")}
    fast = fast_ready(conn)
    idx = get_query_index(conn, emb.name)
    qids = [q for s in splits.values() for q in s]
    parsed = {}
    for q in qids:
        try:
            parsed[q] = parse_query(queries[q][:250])
        except QueryError:
            parsed[q] = None
    qv = dict(zip(qids, emb.encode([parsed[q].text if parsed[q] else queries[q] for q in qids])))
    POOL = 50
    cand = {}
    t_pass = 0.0
    for q in qids:
        pq = parsed[q]
        lex = fast.search(pq.words, POOL) if pq and pq.words else []
        sem = idx.top(qv[q], POOL)
        ids = list(dict.fromkeys([r for r, _ in lex] + [r for r, _ in sem]))
        found, vs = idx.vectors_for(ids)
        cos = dict(zip(found, (vs @ qv[q]).tolist()))
        t0 = time.perf_counter()
        best = {r: float((pvecs[r] @ qv[q]).max()) for r in ids if r in pvecs}
        t_pass += time.perf_counter() - t0
        cand[q] = (dict(lex), ids, cos, best, dict(zip(found, vs)))
    print(f"passage max-cosine over {len(qids)} queries x ~{POOL * 1.6:.0f} candidates: "
          f"{1000 * t_pass / len(qids):.2f} ms/query (numpy, per-paper matrices)", flush=True)

    def mm(x):
        lo, hi = x.min(), x.max()
        return np.ones_like(x) if hi - lo < 1e-9 else (x - lo) / (hi - lo)

    def rank(q, alpha, beta, weak=None, alpha_weak=None, k_rerank=None, prf=0.0, prf_m=5):
        lex, ids, cos, best, vecs = cand[q]
        if not ids:
            return []
        lmax = max(lex.values()) if lex else 1.0
        lv = np.array([lex.get(r, 0.0) / (lmax or 1.0) for r in ids])
        sv = mm(np.array([cos.get(r, min(cos.values())) for r in ids]))
        a = alpha
        if weak is not None and lmax < weak:
            a = alpha_weak
        f = a * lv + (1 - a) * sv
        if prf:
            # Rocchio on the semantic side: the query vector moved towards the first pass's
            # top papers, candidates re-scored (no new retrieval, no new encoding).
            top = [ids[i] for i in np.argsort(-f, kind="stable")[:prf_m] if ids[i] in vecs]
            q2 = qv[q] + prf * np.mean([vecs[r] for r in top], axis=0)
            q2 = q2 / np.linalg.norm(q2)
            sv = mm(np.array([float(vecs[r] @ q2) if r in vecs else 0.0 for r in ids]))
            f = a * lv + (1 - a) * sv
        if beta:
            pv = mm(np.array([best.get(r, cos.get(r, 0.0)) for r in ids]))
            order = np.argsort(-f, kind="stable")
            if k_rerank:
                keep = np.zeros(len(ids), bool)
                keep[order[:k_rerank]] = True
                f = np.where(keep, (1 - beta) * f + beta * pv + 10.0, f)  # reranked head stays on top
            else:
                f = (1 - beta) * f + beta * pv
        order = np.argsort(-f, kind="stable")
        return [pid[ids[i]] for i in order]

    def score(split, **kw):
        qr = splits[split]
        runs = {q: rank(q, **kw) for q in qr}
        nd = np.mean([ndcg_at_k(runs[q], r, 10) for q, r in qr.items()])
        rc = np.mean([recall_at_k(runs[q], r, 100) for q, r in qr.items()])
        return round(float(nd), 4), round(float(rc), 4)

    base = dict(alpha=0.5, beta=0.0)
    print("baseline (alpha 0.5):", "train", score("train", **base), "test", score("test", **base))
    results = []
    for beta in (0.0, 0.2, 0.3, 0.4, 0.5):
        for a in (0.5, 0.6, 0.7, 0.8):
            for k in (None, 20, 30):
                if beta == 0 and k:
                    continue
                kw = dict(alpha=a, beta=beta, k_rerank=k)
                results.append((score("train", **kw)[0], kw))
    results.sort(key=lambda t: -t[0])
    for nd, kw in results[:8]:
        print("passage train", nd, kw)
    best_p = results[0][1]
    print("passage BEST on train", best_p, "-> test", score("test", **best_p), flush=True)
    res_prf = []
    for prf in (0.0, 0.3, 0.6, 1.0):
        for m in (3, 5, 10):
            for beta in (0.0, best_p["beta"]):
                kw = dict(best_p, beta=beta, prf=prf, prf_m=m)
                res_prf.append((score("train", **kw)[0], kw))
    res_prf.sort(key=lambda t: -t[0])
    for nd, kw in res_prf[:6]:
        print("prf train", nd, kw)
    nop = max((t for t in res_prf if t[1]["beta"] == 0.0), key=lambda t: t[0])
    print("prf without passages BEST on train", nop[1], nop[0], "-> test", score("test", **nop[1]))
    print("prf BEST on train", res_prf[0][1], "-> test", score("test", **res_prf[0][1]), flush=True)
    lmaxes = sorted(max(cand[q][0].values()) if cand[q][0] else 0.0 for q in splits["train"])
    qs = [lmaxes[int(len(lmaxes) * f)] for f in (0.1, 0.2, 0.3, 0.5)]
    res2 = []
    for weak in qs:
        for aw in (0.2, 0.3, 0.4):
            kw = dict(best_p, weak=weak, alpha_weak=aw)
            res2.append((score("train", **kw)[0], kw))
    res2.sort(key=lambda t: -t[0])
    for nd, kw in res2[:5]:
        print("adaptive-alpha train", nd, kw)
    best_a = res2[0][1] if res2[0][0] > results[0][0] else best_p
    print("adaptive BEST on train", best_a, "-> test", score("test", **best_a), flush=True)


if __name__ == "__main__":
    main()
