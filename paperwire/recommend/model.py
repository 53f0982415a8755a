"""The per-reader model: logistic regression over paper embeddings, blended with kNN
max-similarity and a BM25 profile query (see BENCHMARKS.md, "For you" quality).

Why this blend: on the author-history benchmark the embedding LR alone (Scholar Inbox's
model) beats the centroid by ~7% nDCG@10; adding kNN max-similarity (a reader with two
interests keeps both: the centroid falls between them) and the reader's distinctive words
(arxiv-sanity-lite's TF-IDF SVM is strong because authors reuse their vocabulary) clears the
+10% target. The LR is trained here with a fixed number of Nesterov steps in float32 numpy:
scikit-learn's ``LogisticRegression`` gives the same ranking on the benchmark but takes
170-400 ms to fit 1,000 signals on 2 cores, over the 50 ms budget for train plus score.

Scores from the three parts are z-normalised over the candidates and added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ITERS = 40
C = 1.0
LEX_WEIGHT = 0.5
KNN_WEIGHT = 1.0
STRONG_NEGATIVE_WEIGHT = 3.0  # a "not interested" counts as three random unrated papers
KNN_MAX = 500  # newest positives kept for kNN max-similarity and the "why" (bounds its cost)


@dataclass
class Linear:
    """A trained reader model: linear weights over the embedding plus the positive vectors
    (for kNN max-similarity and the "why" line)."""

    w: np.ndarray
    b: float
    pos: np.ndarray                      # (P, dim) positive vectors, float32
    pos_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_pos: int = 0
    n_neg: int = 0

    def linear(self, vecs: np.ndarray) -> np.ndarray:
        """Logit of "the reader wants this" for each row of ``vecs``."""
        return vecs @ self.w + self.b

    def nearest(self, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(max cosine to any positive, index of that positive) per row of ``vecs``."""
        if not len(self.pos) or not len(vecs):
            return np.zeros(len(vecs), np.float32), np.zeros(len(vecs), np.int64)
        sims = vecs @ self.pos.T
        arg = sims.argmax(axis=1)
        return sims[np.arange(len(vecs)), arg], arg


def train(pos: np.ndarray, pos_weight: np.ndarray | None, neg: np.ndarray, *, strong_neg: np.ndarray | None = None,
          pos_ids: np.ndarray | None = None, iters: int = ITERS, c: float = C) -> Linear:
    """Fit L2-regularised, class-balanced logistic regression (sklearn's objective with
    ``C=c``), by ``iters`` Nesterov steps from the difference-of-means direction.

    ``pos``: positive vectors (upvotes, saves, more-like-this), ``neg``: weak negatives
    (random unrated recent papers), ``strong_neg``: "not interested"."""
    pos = np.asarray(pos, np.float32)
    dim = pos.shape[1] if pos.ndim == 2 else np.asarray(neg).shape[1]
    neg = np.asarray(neg, np.float32).reshape(-1, dim)
    strong = np.zeros((0, dim), np.float32) if strong_neg is None else np.asarray(strong_neg, np.float32).reshape(-1, dim)
    P, N, S = len(pos), len(neg), len(strong)
    ids = np.zeros(0, np.int64) if pos_ids is None else np.asarray(pos_ids, np.int64)
    if P == 0 or N + S == 0:
        return Linear(np.zeros(dim, np.float32), 0.0, pos, ids, P, N + S)
    # Everything stays float32 (one BLAS sgemv per product): NumPy 2 promotes a float32 array
    # times a NumPy float64 scalar to float64, which silently turned every product below into a
    # converted float64 one and cost most of the fit (bench/recommend_speed.py, F3 profile).
    X = np.empty((P + N + S, dim), np.float32)
    X[:P], X[P:P + N], X[P + N:] = pos, neg, strong
    y = np.zeros(len(X), np.float32)
    y[:P] = 1.0
    pw = np.ones(P, np.float32) if pos_weight is None else np.asarray(pos_weight, np.float32)
    nw = np.r_[np.ones(N, np.float32), np.full(S, STRONG_NEGATIVE_WEIGHT, np.float32)]
    # Class-balanced sample weights (sklearn's class_weight="balanced"), mean-normalised.
    s = (np.r_[pw / pw.sum(), nw / nw.sum()] * 0.5).astype(np.float32)
    n = len(X)
    lam = np.float32(1.0 / (c * n))
    ones = np.ones(n, np.float32)
    mu = (ones @ X) * np.float32(1.0 / n)  # column means by BLAS: X.mean(axis=0) is a strided loop
    # The difference-of-means start, taken before centring (centring does not change it).
    w = (ones[:P] @ X[:P]) * np.float32(1.0 / P) - (ones[P:] @ X[P:]) * np.float32(1.0 / (N + S))
    X -= mu  # centring removes the direction every MiniLM vector shares: far better conditioned
    Xc = X
    # Lipschitz constant of the gradient: 0.25 * top eigenvalue of Xc' diag(s) Xc, by power iteration.
    v = np.full(dim, 1.0 / np.sqrt(dim), np.float32)
    for _ in range(5):
        v = Xc.T @ (s * (Xc @ v))
        v *= np.float32(1.0 / (float(np.linalg.norm(v)) or 1.0))
    L = 0.25 * float(v @ (Xc.T @ (s * (Xc @ v)))) + float(lam) + 0.25
    step = np.float32(1.0 / L)
    w = w.astype(np.float32) * np.float32(1.0 / (float(np.linalg.norm(w)) or 1.0))
    b = 0.0
    w_prev, b_prev = w.copy(), b
    z = np.empty(n, np.float32)
    for t in range(1, iters + 1):
        mom = np.float32((t - 1) / (t + 2))
        wv, bv = w + mom * (w - w_prev), b + float(mom) * (b - b_prev)
        np.matmul(Xc, wv, out=z)
        z += np.float32(bv)
        np.clip(z, -30, 30, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1.0
        np.reciprocal(z, out=z)  # p = sigmoid(Xc w + b)
        z -= y
        z *= s                   # g = s * (p - y)
        gw = Xc.T @ z + lam * wv
        gb = float(z.sum())
        w_prev, b_prev = w, b
        w, b = wv - step * gw, bv - float(step) * gb
    w = w.astype(np.float32)
    keep = slice(max(0, P - KNN_MAX), P)
    return Linear(w, float(b - mu @ w), np.ascontiguousarray(pos[keep]), ids[keep] if len(ids) == P else ids, P, N + S)


def _z(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - float(x.mean())) / (sd if sd > 1e-9 else 1.0)


def blend_scores(model: Linear, vecs: np.ndarray, lex: np.ndarray | None = None, *,
                 near: np.ndarray | None = None) -> np.ndarray:
    """The shipped score of each candidate row: z(LR) + z(kNN max) + z(BM25 profile).

    ``lex``: BM25 of the reader's profile query per candidate (0 where it did not match);
    ``near``: the rows' max cosine to a positive, when the caller already has it."""
    score = _z(model.linear(vecs))
    if len(model.pos):
        score += KNN_WEIGHT * _z(model.nearest(vecs)[0] if near is None else near)
    if lex is not None and np.any(lex > 0):
        score += LEX_WEIGHT * _z(np.where(lex > 0, lex, 0.0))
    return score
