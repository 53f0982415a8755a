"""Learned fusion on a BEIR set: a ranker over a few features of each candidate, fitted on train.

    python bench/search_levers3.py ../shared/bench/scifact --scratch /tmp/h5/sf.db [--model linear|lgbm|all]

Reads the candidate data that bench/search_levers2.py pickled (``<scratch>.levers2.pkl``; run
``search_levers2.py --set 1`` once first). Candidates are the product's: the lexical top 50
(``--lexname``) and the 50 nearest paper vectors. Each candidate gets the features the site
already has at hand (BM25 / max, the cosine, their per-query min-max, the best passage cosine
when ``--passages``, ranks, and query-level strength: the best BM25 and the best cosine, so a
model can trust one side more when the other is weak). Model choice and its settings are picked
by 5-fold cross-validation **on train**; the chosen one is refitted on all of train and test is
printed once.
"""

from __future__ import annotations

import argparse
import itertools
import math
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import levers2_score as ls  # noqa: E402

BASE_FEATURES = ["lv", "sv", "cos", "in_lex", "in_sem", "lrr", "srr", "lv_x_qbm", "sv_x_qcos", "lv_x_nw"]
PASSAGE_FEATURES = ["pv", "pcos", "pv_x_qcos"]


def features(lab: ls.Lab, q: str, *, lexname: str, passages: bool, lpool: int = 50, spool: int = 50):
    """(candidate doc indices, feature matrix) for one query, the product's candidate pool."""
    i = lab.qpos[q]
    li, lsc = lab.lex(lexname, lpool)[q]
    cos = lab.C[i]
    si = np.argpartition(-cos, spool)[:spool]
    si = si[np.argsort(-cos[si], kind="stable")]
    cand = np.array(list(dict.fromkeys(li.tolist() + si.tolist())), np.int64)
    lexd = dict(zip(li.tolist(), lsc.tolist()))
    lrank = {r: k for k, r in enumerate(li.tolist())}
    srank = {r: k for k, r in enumerate(si.tolist())}
    lraw = np.array([lexd.get(r, 0.0) for r in cand.tolist()])
    bmax = lsc.max() if len(lsc) and lsc.max() > 0 else 1.0
    lv = lraw / bmax
    c = cos[cand].astype(np.float64)
    sv = ls._mm(c)
    qbm = math.log1p(float(lsc.max())) if len(lsc) else 0.0
    qcos = float(c.max())
    nw = float(lab.d["n_words"][q])
    cols = {
        "lv": lv, "sv": sv, "cos": c,
        "in_lex": np.array([r in lrank for r in cand.tolist()], float),
        "in_sem": np.array([r in srank for r in cand.tolist()], float),
        "lrr": np.array([1.0 / (5 + lrank[r]) if r in lrank else 0.0 for r in cand.tolist()]),
        "srr": np.array([1.0 / (5 + srank[r]) if r in srank else 0.0 for r in cand.tolist()]),
        "lv_x_qbm": lv * qbm, "sv_x_qcos": sv * qcos, "lv_x_nw": lv * min(nw, 30) / 10,
    }
    names = list(BASE_FEATURES)
    if passages:
        p = lab.passage_best("all")[i][cand].astype(np.float64)
        cols.update(pv=ls._mm(p), pcos=p, pv_x_qcos=ls._mm(p) * qcos)
        names += PASSAGE_FEATURES
    X = np.stack([cols[n] for n in names], 1)
    # The product's no-match rule: a semantic-only candidate under the threshold is dropped.
    keep = np.array([(r in lrank) or cos[r] >= ls.NOMATCH for r in cand.tolist()])
    return cand[keep], X[keep], names


class Data:
    """Per query: candidates, features, graded labels."""

    def __init__(self, lab, qids, **kw):
        self.lab, self.qids = lab, list(qids)
        self.cand, self.X, self.y = [], [], []
        for q in self.qids:
            c, X, names = features(lab, q, **kw)
            g = lab.rels[q][0]
            self.cand.append(c)
            self.X.append(X)
            self.y.append(np.array([g.get(int(r), 0) for r in c.tolist()], float))
        self.names = names

    def ndcg(self, scores_per_query) -> float:
        out = []
        for q, c, s in zip(self.qids, self.cand, scores_per_query):
            order = c[np.argsort(-s, kind="stable")]
            out.append(self.lab.ndcg(q, order))
        return float(np.mean(out))

    def subset(self, idx):
        d = object.__new__(Data)
        d.lab, d.names = self.lab, self.names
        d.qids = [self.qids[k] for k in idx]
        d.cand = [self.cand[k] for k in idx]
        d.X = [self.X[k] for k in idx]
        d.y = [self.y[k] for k in idx]
        return d


def fit_linear_pairwise(d: Data, C: float, feats: list[int]):
    """RankNet-style linear ranker: logistic regression on the feature differences of
    (relevant, non-relevant) pairs within a query. Returns the weight vector."""
    from sklearn.linear_model import LogisticRegression

    diffs = []
    for X, y in zip(d.X, d.y):
        pos, neg = np.where(y > 0)[0], np.where(y == 0)[0]
        if len(pos) == 0 or len(neg) == 0:
            continue
        Xs = X[:, feats]
        diffs.append((Xs[pos][:, None, :] - Xs[neg][None, :, :]).reshape(-1, len(feats)))
    D = np.concatenate(diffs)
    D = np.concatenate([D, -D])
    y = np.concatenate([np.ones(len(D) // 2), np.zeros(len(D) // 2)])
    m = LogisticRegression(C=C, fit_intercept=False, max_iter=2000).fit(D, y)
    return m.coef_[0]


def coord_ascent(d: Data, feats: list[int], start: np.ndarray, rounds: int = 3):
    """Coordinate ascent on mean nDCG@10 over linear weights (RankLib's method), from ``start``."""
    w = start.astype(float).copy()
    Xs = [X[:, feats] for X in d.X]
    best = d.ndcg([X @ w for X in Xs])
    steps = [-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0]
    for _ in range(rounds):
        improved = False
        for j in range(len(feats)):
            for st in steps:
                w2 = w.copy()
                w2[j] += st * max(abs(w[j]), 0.1)
                s = d.ndcg([X @ w2 for X in Xs])
                if s > best + 1e-6:
                    best, w, improved = s, w2, True
        if not improved:
            break
    return w


def fit_lgbm(d: Data, params: dict):
    try:
        import lightgbm as lgb
    except ImportError:
        raise SystemExit("--model lgbm needs LightGBM: pip install lightgbm (a benchmark extra, not a paperwire dependency)") from None

    X = np.concatenate(d.X)
    y = np.concatenate(d.y).astype(int)
    group = [len(x) for x in d.X]
    m = lgb.LGBMRanker(objective="lambdarank", verbose=-1, n_jobs=2, **params)
    m.fit(X, y, group=group)
    return m


def anchor_scores(d: Data, alpha: float, tw: float):
    j = {n: k for k, n in enumerate(d.names)}
    out = []
    for X in d.X:
        sv = X[:, j["sv"]]
        if tw:
            sem = ls._mm((1 - tw) * X[:, j["cos"]] + tw * X[:, j["pcos"]])
        else:
            sem = sv
        out.append(alpha * X[:, j["lv"]] + (1 - alpha) * sem)
    return out


def cv_folds(n: int, k: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    return [perm[f::k] for f in range(k)]


def cv(d: Data, fit, predict) -> float:
    """Mean nDCG@10 over 5 folds of train (each fold scored by a model fitted on the others)."""
    folds = cv_folds(len(d.qids))
    res = []
    for f in folds:
        rest = np.setdiff1d(np.arange(len(d.qids)), f)
        model = fit(d.subset(rest))
        sub = d.subset(f)
        res.append(sub.ndcg([predict(model, X) for X in sub.X]) * len(f))
    return sum(res) / len(d.qids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--lexname", default="ship")
    ap.add_argument("--passages", action="store_true")
    ap.add_argument("--model", default="all", choices=["linear", "lgbm", "all"])
    args = ap.parse_args()
    cache = args.scratch.with_name(args.scratch.name + ".levers2.pkl")
    lab = ls.Lab(pickle.loads(cache.read_bytes()))
    splits = lab.d["splits"]
    tr = Data(lab, splits["train"], lexname=args.lexname, passages=args.passages)
    te = Data(lab, splits["test"], lexname=args.lexname, passages=args.passages)
    print(f"features: {tr.names}; lexical {args.lexname}, passages {args.passages}", flush=True)
    anchor = (0.45, 0.7) if args.passages else (0.5, 0.0)
    print(f"ANCHOR linear fusion alpha {anchor[0]} tw {anchor[1]}: train {tr.ndcg(anchor_scores(tr, *anchor)):.4f} "
          f"test {te.ndcg(anchor_scores(te, *anchor)):.4f}", flush=True)
    results = []
    names = tr.names
    if args.model in ("linear", "all"):
        sets = {"base2": ["lv", "sv"], "base": ["lv", "sv", "cos", "in_lex", "lrr", "srr"],
                "query-dependent": ["lv", "sv", "cos", "in_lex", "lrr", "srr", "lv_x_qbm", "sv_x_qcos", "lv_x_nw"]}
        if args.passages:
            sets = {k + "+pass": v + ["pv", "pcos", "pv_x_qcos"] for k, v in sets.items()}
        for (label, fs), C in itertools.product(sets.items(), [0.01, 0.1, 1.0]):
            feats = [names.index(f) for f in fs]
            fit = lambda d, feats=feats, C=C: coord_ascent(d, feats, fit_linear_pairwise(d, C, feats))  # noqa: E731
            pred = lambda w, X, feats=feats: X[:, feats] @ w  # noqa: E731
            score = cv(tr, fit, pred)
            print(f"  linear pairwise + coordinate ascent, {label}, C {C}: CV train {score:.4f}", flush=True)
            results.append((score, f"linear {label} C {C}", fit, pred))
    if args.model in ("lgbm", "all"):
        grid = [dict(n_estimators=n, learning_rate=lr, num_leaves=nl, min_child_samples=mc)
                for n, lr, nl, mc in itertools.product([100, 300], [0.03, 0.1], [7, 15], [50])]
        for p in grid:
            fit = lambda d, p=p: fit_lgbm(d, p)  # noqa: E731
            pred = lambda m, X: m.predict(X)  # noqa: E731
            score = cv(tr, fit, pred)
            print(f"  lambdarank {p}: CV train {score:.4f}", flush=True)
            results.append((score, f"lambdarank {p}", fit, pred))
    results.sort(key=lambda t: -t[0])
    score, label, fit, pred = results[0]
    model = fit(tr)
    print(f"BEST on train CV {score:.4f}: {label} -> train (refit, in-sample) {tr.ndcg([pred(model, X) for X in tr.X]):.4f}, "
          f"test {te.ndcg([pred(model, X) for X in te.X]):.4f}", flush=True)
    if isinstance(model, np.ndarray):
        print("weights:", dict(zip([n for n in names], np.round(model, 3))) if len(model) == len(names) else np.round(model, 3))


if __name__ == "__main__":
    main()
