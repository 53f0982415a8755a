"""Offline scoring for bench/search_levers2.py: every setting tuned on train, test beside it."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

NOMATCH = 0.33


class Lab:
    def __init__(self, d: dict):
        self.d = d
        self.qids = d["qids"]
        self.qpos = {q: i for i, q in enumerate(self.qids)}
        rowids = d["rowids"]
        self.ridx = {int(r): i for i, r in enumerate(rowids)}
        pidx = {p: i for i, p in enumerate(d["pids"])}
        self.rels = {}
        for split, qr in d["splits"].items():
            for q, rel in qr.items():
                g = {pidx[p]: r for p, r in rel.items() if r > 0 and p in pidx}
                ideal = sorted(g.values(), reverse=True)[:10]
                self.rels[q] = (g, sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal)))
        Q = d["Q"].astype(np.float32)
        self.C = Q @ d["V"].T                      # paper cosines, (queries, papers)
        self.CT = Q @ d["T"].T                     # title-only cosines
        P = d["P"]
        self.npass = np.array([len(p) for p in P])
        self.PM = np.concatenate(P).astype(np.float32)
        self.off = np.concatenate([[0], np.cumsum(self.npass)[:-1]])
        self.S = Q @ self.PM.T                     # every passage's cosine
        self.best = {}
        self._lex = {}

    def passage_best(self, which: str) -> np.ndarray:
        """Best passage cosine per paper, over a subset of each abstract's passages."""
        if which in self.best:
            return self.best[which]
        n, off = self.npass, self.off
        if which in ("top2", "mean", "lse10", "lse20"):
            return self._pool_passages(which)
        if which == "all":
            cols = np.arange(self.PM.shape[0])
            starts = off
        else:
            sel = []
            for o, k in zip(off, n):
                idx = list(range(k))
                if which == "first":
                    pick = idx[:1]
                elif which == "last":
                    pick = idx[-1:]
                elif which == "first+last":
                    pick = sorted(set(idx[:1] + idx[-1:]))
                elif which.startswith("first"):
                    pick = idx[: int(which[5:])]
                elif which.startswith("last"):
                    pick = idx[-int(which[4:]):]
                elif which.startswith("every"):  # every other sentence
                    pick = idx[:: int(which[5:])]
                else:
                    raise ValueError(which)
                sel.append([o + i for i in pick])
            lens = np.array([len(s) for s in sel])
            cols = np.concatenate([np.array(s, dtype=np.int64) for s in sel])
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        b = np.maximum.reduceat(self.S[:, cols], starts, axis=1)
        self.best[which] = b
        self.best[which + ":n"] = len(cols)
        return b

    def _pool_passages(self, how: str) -> np.ndarray:
        """Other ways to pool each paper's passage cosines than the max."""
        out = np.empty_like(self.C)
        for j, (o, k) in enumerate(zip(self.off, self.npass)):
            s = self.S[:, o : o + k]
            if how == "top2":
                out[:, j] = s.max(1) if k < 2 else np.sort(s, 1)[:, -2:].mean(1)
            elif how == "mean":
                out[:, j] = s.mean(1)
            else:
                t = float(how[3:])
                m = s.max(1, keepdims=True)
                out[:, j] = (m[:, 0] + np.log(np.exp(t * (s - m)).mean(1)) / t)
        self.best[how] = out
        self.best[how + ":n"] = self.PM.shape[0]
        return out

    def lex(self, name: str, pool: int):
        """Per query: (candidate doc indices from lexical top-``pool``, their BM25)."""
        key = (name, pool)
        if key not in self._lex:
            out = {}
            for q, lst in self.d["lex"][name].items():
                lst = lst[:pool]
                out[q] = (np.array([self.ridx[r] for r, _ in lst], np.int64), np.array([s for _, s in lst], np.float64))
            self._lex[key] = out
        return self._lex[key]

    def ndcg(self, q: str, top: np.ndarray) -> float:
        g, idcg = self.rels[q]
        if idcg == 0:
            return 0.0
        return sum((2 ** g.get(int(t), 0) - 1) / math.log2(i + 2) for i, t in enumerate(top[:10])) / idcg

    def rank(self, q, *, lexname="ship", lpool=50, spool=50, alpha=0.5, norm="max", sem="paper", tw=0.0,
             pb=None, beta=0.0, pnorm="minmax", rrf_k=None, tw2=0.0, select="paper", smooth=0.0, gamma=0.0):
        i = self.qpos[q]
        li, ls = self.lex(lexname, lpool)[q]
        cos = self.C[i]
        if sem == "paper":
            s_all = cos
        elif sem == "long":             # paper vector embedded at up to 512 tokens (not 256)
            s_all = self.CL[i]
        elif sem == "long_blend":
            s_all = (1 - tw) * self.CL[i] + tw * self.passage_best(pb)[i]
        elif sem == "long_max":
            s_all = np.maximum(cos, self.CL[i])
        elif sem == "title_blend":
            s_all = (1 - tw) * cos + tw * self.CT[i]
        elif sem == "title_max":
            s_all = np.maximum(cos, self.CT[i])
        elif sem == "pass_blend":       # paper cosine blended with best passage, as the semantic score
            s_all = (1 - tw) * cos + tw * self.passage_best(pb)[i]
        elif sem == "pass_title":       # paper, title and best-passage cosines
            s_all = (1 - tw - tw2) * cos + tw * self.passage_best(pb)[i] + tw2 * self.CT[i]
        else:
            raise ValueError(sem)
        # The semantic candidates come from the paper vectors (one index, as shipped); other
        # vectors only re-score candidates.
        sel = {"paper": cos, "long": getattr(self, "CL", cos)[i]}.get(select, s_all)
        si = np.argpartition(-sel, spool)[:spool]
        si = si[np.argsort(-sel[si], kind="stable")]
        cand = np.array(list(dict.fromkeys(li.tolist() + si.tolist())), np.int64)
        if len(cand) == 0:
            return cand
        lexd = dict(zip(li.tolist(), ls.tolist()))
        if rrf_k is not None:
            lr = {r: k for k, r in enumerate(li.tolist())}
            sr = {r: k for k, r in enumerate(si.tolist())}
            f = np.array([alpha / (rrf_k + lr[r] + 1) if r in lr else 0.0 for r in cand.tolist()])
            f += np.array([(1 - alpha) / (rrf_k + sr[r] + 1) if r in sr else 0.0 for r in cand.tolist()])
        else:
            lraw = np.array([lexd.get(r, 0.0) for r in cand.tolist()])
            sv = s_all[cand].astype(np.float64)
            if norm == "max":
                lv = lraw / (ls.max() if len(ls) and ls.max() > 0 else 1.0)
                sv = _mm(sv)
            elif norm == "minmax":
                lv = _mm(np.where(lraw > 0, lraw, ls.min() if len(ls) else 0.0)) if len(ls) else lraw
                sv = _mm(sv)
            elif norm == "raw":       # BM25 / max, raw cosine (no per-query stretch of the semantic side)
                lv = lraw / (ls.max() if len(ls) and ls.max() > 0 else 1.0)
            elif norm == "z":
                lfill = np.where(lraw > 0, lraw, ls.min() if len(ls) else 0.0)
                lv = _z(lfill) if len(ls) else lraw
                sv = _z(sv)
            else:
                raise ValueError(norm)
            f = alpha * lv + (1 - alpha) * sv
        if gamma:
            sb = self.sent[q]
            sl = np.array([sb.get(int(self.d["rowids"][r]), 0.0) for r in cand.tolist()])
            f = f + gamma * (sl / sl.max() if sl.max() > 0 else sl)
        if smooth:
            # Cluster hypothesis: a candidate close to other high-scoring candidates gains.
            X = self.d["V"][cand]
            sim = X @ X.T
            np.fill_diagonal(sim, -1.0)
            k = min(5, len(cand) - 1)
            if k > 0:
                nb = np.argsort(-sim, 1)[:, :k]
                f = f + smooth * (f[nb] * np.take_along_axis(sim, nb, 1)).mean(1)
        if beta:
            pv = self.passage_best(pb)[i][cand].astype(np.float64)
            pv = _mm(pv) if pnorm == "minmax" else _z(pv)
            f = (1 - beta) * f + beta * pv
        ok = set(li.tolist()) | {r for r in si.tolist() if sel[r] >= NOMATCH}
        order = np.argsort(-f, kind="stable")
        return np.array([cand[k] for k in order if int(cand[k]) in ok], np.int64)

    def score(self, split: str, **kw) -> float:
        qs = self.d["splits"][split]
        return round(float(np.mean([self.ndcg(q, self.rank(q, **kw)) for q in qs])), 4)

    def both(self, **kw) -> tuple[float, float]:
        return self.score("train", **kw), self.score("test", **kw)

    def tune(self, label: str, grid: dict, base: dict | None = None, show: int = 3):
        """Best setting on train over the grid; prints its test beside it."""
        base = dict(base or {})
        keys = list(grid)
        res = []
        for vals in itertools.product(*(grid[k] for k in keys)):
            kw = dict(base, **dict(zip(keys, vals)))
            res.append((self.score("train", **kw), kw))
        res.sort(key=lambda t: -t[0])
        for tr, kw in res[:show]:
            print(f"  {label} train {tr} {_short(kw, base)}", flush=True)
        tr, kw = res[0]
        te = self.score("test", **kw)
        print(f"{label}: BEST on train {tr} -> test {te}  {_short(kw, base)}", flush=True)
        return kw, tr, te


def _short(kw, base):
    return {k: v for k, v in kw.items() if base.get(k, object()) != v}


def _mm(x):
    lo, hi = x.min(), x.max()
    return np.ones_like(x) if hi - lo < 1e-9 else (x - lo) / (hi - lo)


def _z(x):
    sd = x.std()
    return np.zeros_like(x) if sd < 1e-9 else (x - x.mean()) / sd


def experiments(d: dict) -> None:
    t0 = time.time()
    lab = Lab(d)
    print(f"lab ready {time.time() - t0:.1f}s", flush=True)
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped (tantivy title boost 0.2, pool 50, linear alpha 0.5):", lab.both(**ship), flush=True)
    for name in d["lex"]:
        print("lexical-only", name, lab.both(lexname=name, alpha=1.0, spool=1), flush=True)
    out = {}
    out["alpha"] = lab.tune("alpha", {"alpha": [0.4, 0.45, 0.5, 0.55, 0.6]}, ship)
    out["lexvar"] = lab.tune("lexical variant + alpha", {"lexname": list(d["lex"]), "alpha": [0.45, 0.5, 0.55, 0.6]}, ship, show=6)
    out["norm"] = lab.tune("normalisation", {"norm": ["max", "minmax", "z"], "alpha": [0.3, 0.4, 0.5, 0.6, 0.7]}, ship)
    out["rrf"] = lab.tune("rrf", {"rrf_k": [5, 10, 20, 60], "alpha": [0.4, 0.5, 0.6]}, ship)
    out["pool"] = lab.tune("pools", {"lpool": [30, 50, 100, 200], "spool": [30, 50, 100, 200]}, ship)
    out["title"] = lab.tune("title vector blend", {"sem": ["title_blend"], "tw": [0.1, 0.2, 0.3, 0.4], "alpha": [0.45, 0.5, 0.55]}, ship)
    out["titlemax"] = lab.tune("title vector max", {"sem": ["title_max"], "alpha": [0.45, 0.5, 0.55]}, ship)
    for pb in ("all", "first", "last", "first+last", "first2", "last2", "first3"):
        lab.passage_best(pb)
        print(f"passages '{pb}': {lab.best[pb + ':n']} ({lab.best[pb + ':n'] / len(d['rowids']):.2f} per paper)")
        out["pass_" + pb] = lab.tune(f"passage rerank {pb}", {"pb": [pb], "beta": [0.2, 0.3, 0.4, 0.5], "alpha": [0.5, 0.6, 0.7]}, ship)
        out["passsem_" + pb] = lab.tune(f"passage in semantic score {pb}", {"pb": [pb], "sem": ["pass_blend"], "tw": [0.3, 0.5, 0.7], "alpha": [0.45, 0.5, 0.55, 0.6]}, ship)
    print("done", round(time.time() - t0), "s")


def experiments2(d: dict) -> None:
    """Combinations of the levers that helped alone (lexical title repetition, passages)."""
    lab = Lab(d)
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    lexes = ["ship", "rep2", "rep3", "rep4", "rep2b0.1", "rep2b0.2"]
    lab.tune("lexical variant, fine alpha", {"lexname": lexes, "alpha": [0.45, 0.475, 0.5, 0.525, 0.55]}, ship, show=6)
    lab.tune("lexical variant + z-score", {"lexname": lexes, "norm": ["z"], "alpha": [0.3, 0.35, 0.4, 0.45]}, ship, show=4)
    lab.tune("lexical variant + title max", {"lexname": lexes, "sem": ["title_max"], "alpha": [0.45, 0.5, 0.55]}, ship, show=4)
    lab.tune("lexical variant + passage rerank", {"lexname": lexes, "pb": ["all"], "beta": [0.2, 0.3, 0.4, 0.5],
             "alpha": [0.5, 0.6, 0.7]}, ship, show=6)
    lab.tune("lexical variant + passage in semantic", {"lexname": lexes, "pb": ["all"], "sem": ["pass_blend"],
             "tw": [0.3, 0.5, 0.7, 0.85], "alpha": [0.4, 0.45, 0.5, 0.55]}, ship, show=6)
    lab.tune("lexical variant + passage in semantic + rerank", {"lexname": ["rep2", "rep3"], "pb": ["all"], "sem": ["pass_blend"],
             "tw": [0.5, 0.7], "alpha": [0.45, 0.5, 0.6], "beta": [0.2, 0.3]}, ship, show=4)


def paired(lab, split, a, b):
    qs = list(lab.d["splits"][split])
    x = np.array([lab.ndcg(q, lab.rank(q, **b)) - lab.ndcg(q, lab.rank(q, **a)) for q in qs])
    return round(float(x.mean()), 4), round(float(x.std(ddof=1) / np.sqrt(len(x))), 4), int((x > 0).sum()), int((x < 0).sum())


def experiments3(d: dict) -> None:
    lab = Lab(d)
    ship = dict(lexname="ship", alpha=0.5)
    rep2 = dict(lexname="rep2", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    for split in ("train", "test"):
        print(f"rep2 vs shipped, {split}: mean diff, s.e., queries up, down:", paired(lab, split, ship, rep2), flush=True)
    best = dict(lexname="rep2", alpha=0.45, pb="all", sem="pass_blend", tw=0.7)
    for split in ("train", "test"):
        print(f"rep2 + passages-in-semantic vs shipped, {split}:", paired(lab, split, ship, best), flush=True)
    lab.tune("passage candidates too (passage index)", {"lexname": ["ship", "rep2"], "pb": ["all"], "sem": ["pass_blend"], "select": ["blend"],
             "tw": [0.5, 0.7, 0.85], "alpha": [0.4, 0.45, 0.5]}, ship, show=4)
    lab.tune("paper + passage + title", {"lexname": ["ship", "rep2"], "pb": ["all"], "sem": ["pass_title"], "tw": [0.4, 0.5, 0.6, 0.7],
             "tw2": [0.1, 0.2, 0.3], "alpha": [0.45, 0.5, 0.55]}, ship, show=4)
    lab.tune("title max, finer", {"lexname": ["ship", "rep2"], "sem": ["title_max"], "alpha": [0.5, 0.525, 0.55, 0.575, 0.6]}, ship, show=4)
    lab.tune("title blend + rep2", {"lexname": ["rep2"], "sem": ["title_blend"], "tw": [0.1, 0.2, 0.3, 0.4], "alpha": [0.45, 0.5, 0.55]}, ship, show=3)
    lab.tune("passages-in-semantic, pools", {"lexname": ["rep2"], "pb": ["all"], "sem": ["pass_blend"], "tw": [0.7],
             "alpha": [0.45], "lpool": [30, 50, 100], "spool": [30, 50, 100]}, ship, show=3)


def experiments4(d: dict) -> None:
    lab = Lab(d)
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    for pb in ("all", "top2", "lse10", "lse20", "mean"):
        lab.tune(f"rep2 + passages ({pb}) in semantic", {"lexname": ["rep2"], "pb": [pb], "sem": ["pass_blend"],
                 "tw": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], "alpha": [0.4, 0.45, 0.5]}, ship, show=3)


def experiments5(d: dict) -> None:
    lab = Lab(d)
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    lab.tune("raw cosine", {"lexname": ["rep2"], "norm": ["raw"], "alpha": [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]}, ship)
    lab.tune("neighbour smoothing", {"lexname": ["rep2"], "smooth": [0.1, 0.2, 0.4, 0.8], "alpha": [0.45, 0.5, 0.55]}, ship)
    lab.tune("neighbour smoothing + passages", {"lexname": ["rep2"], "pb": ["all"], "sem": ["pass_blend"], "tw": [0.7],
             "smooth": [0.1, 0.2, 0.4], "alpha": [0.45, 0.5]}, ship)


def experiments6(d: dict, VL) -> None:
    lab = Lab(d)
    lab.CL = d["Q"].astype(np.float32) @ VL.T
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    print("semantic only, 256 / 512 tokens:", lab.both(alpha=0.0, lpool=1), lab.both(alpha=0.0, lpool=1, sem="long", select="long"), flush=True)
    lab.tune("512-token paper vectors", {"lexname": ["ship", "rep2"], "sem": ["long"], "select": ["long"], "alpha": [0.4, 0.45, 0.5, 0.55, 0.6]}, ship)
    lab.tune("max(256, 512) cosine", {"lexname": ["ship", "rep2"], "sem": ["long_max"], "select": ["paper"], "alpha": [0.45, 0.5, 0.55]}, ship)
    lab.tune("512-token vectors + passages in semantic", {"lexname": ["rep2"], "sem": ["long_blend"], "select": ["long"], "pb": ["all"],
             "tw": [0.3, 0.5, 0.7], "alpha": [0.4, 0.45, 0.5]}, ship)


def experiments7(d: dict, sent: dict) -> None:
    lab = Lab(d)
    lab.sent = sent
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    lab.tune("best-sentence BM25 added", {"lexname": ["ship", "rep2"], "gamma": [0.05, 0.1, 0.2, 0.3], "alpha": [0.4, 0.45, 0.5]}, ship)
    lab.tune("best-sentence BM25 + passages in semantic", {"lexname": ["rep2"], "pb": ["all"], "sem": ["pass_blend"], "tw": [0.5, 0.7],
             "gamma": [0.05, 0.1, 0.2], "alpha": [0.4, 0.45]}, ship)


def experiments8(d: dict, wins: list) -> None:
    """Two-sentence windows (half the passages) in place of single sentences."""
    d2 = dict(d, P=wins)
    lab = Lab(d2)
    ship = dict(lexname="ship", alpha=0.5)
    print("ANCHOR shipped:", lab.both(**ship), flush=True)
    lab.tune("windows in semantic", {"lexname": ["ship", "rep2"], "pb": ["all"], "sem": ["pass_blend"], "tw": [0.3, 0.5, 0.7, 0.85],
             "alpha": [0.4, 0.45, 0.5, 0.55]}, ship, show=4)
    lab.tune("windows rerank", {"lexname": ["ship", "rep2"], "pb": ["all"], "beta": [0.2, 0.3, 0.4, 0.5], "alpha": [0.5, 0.6, 0.7]}, ship, show=3)
    lab.tune("windows in semantic, rep2 only", {"lexname": ["rep2"], "pb": ["all"], "sem": ["pass_blend"], "tw": [0.5, 0.7, 0.85, 1.0],
             "alpha": [0.35, 0.4, 0.45, 0.5]}, ship, show=3)
    lab.tune("windows in semantic, finer", {"lexname": ["ship"], "pb": ["all"], "sem": ["pass_blend"], "tw": [0.75, 0.85, 0.95, 1.0],
             "alpha": [0.35, 0.4, 0.45]}, ship, show=3)
    for split in ("train", "test"):
        print(f"windows (tw 0.85, alpha 0.4) vs shipped, {split}: mean diff, s.e., up, down:",
              paired(lab, split, ship, dict(ship, alpha=0.4, pb="all", sem="pass_blend", tw=0.85)), flush=True)
