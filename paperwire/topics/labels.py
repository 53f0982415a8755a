"""Cluster labels from their distinctive terms: class-based TF-IDF (c-TF-IDF, as in BERTopic).

Each cluster's titles + abstracts are one "class document". A term's weight in a class is
its frequency there (normalised by the class's length) times ``log(1 + A / f)``, where ``A``
is the mean class length and ``f`` the term's frequency over all classes: words every
cluster uses ("model", "results") score low, words one cluster owns score high.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

import numpy as np

from paperwire.store import topics as sql

# Words that say "this is a paper", not what it is about (on top of scikit-learn's English list).
SCIENCE_STOP = frozenset("""
paper papers propose proposed proposes present presents presented show shows shown study studies
studied result results method methods approach approaches based using use used new novel work
works demonstrate demonstrates finally furthermore moreover however thus also well recent recently
existing state art experiments experimental extensive significantly outperforms outperform achieve
achieves achieving performance problem problems different various several number given provide
provides obtained obtain case cases consider considered paper's introduce introduces investigate
investigated respectively important order terms term able wide widely including include includes
model models data bar tilde hat mathrm mathcal mathbf frac sqrt cdot left right rangle langle leq geq sim approx
""".split())


def _key(term: str) -> str:
    """Singular-ish form, so "model" and "models" count as one term when picking labels."""
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in term.split())

TOP_TERMS = 8
LABEL_TERMS = 3


def _vectorizer(n_docs: int):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    return CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | SCIENCE_STOP),
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z\-]{2,}\b",  # words, not numbers or LaTeX debris
        ngram_range=(1, 2),
        min_df=2 if n_docs >= 20 else 1,
        max_features=200000,
        lowercase=True,
    )


def c_tf_idf(texts: Sequence[str], labels: Sequence[int], n_classes: int, *, top: int = TOP_TERMS) -> list[list[str]]:
    """The ``top`` most distinctive terms of each class ``0 .. n_classes-1`` (empty list if none)."""
    from scipy import sparse

    labels = np.asarray(labels, dtype=np.int64)
    if len(texts) == 0:
        return [[] for _ in range(n_classes)]
    vec = _vectorizer(len(texts))
    try:
        counts = vec.fit_transform(texts)
    except ValueError:  # every word was a stop word
        return [[] for _ in range(n_classes)]
    member = sparse.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))),
                               shape=(n_classes, len(labels)))
    tf = (member @ counts).astype(np.float64).toarray()  # (classes, terms)
    class_len = tf.sum(axis=1, keepdims=True)
    term_freq = tf.sum(axis=0)
    avg_len = class_len.mean()
    idf = np.log1p(avg_len / np.maximum(term_freq, 1.0))
    weight = (tf / np.maximum(class_len, 1.0)) * idf
    vocab = vec.get_feature_names_out()
    out = []
    for c in range(n_classes):
        order = np.argsort(-weight[c])
        terms: list[str] = []
        for j in order[: top * 4]:
            if weight[c, j] <= 0:
                break
            term = str(vocab[j])
            # "neural network" and "network", or "model" and "models", say the same thing twice.
            key = _key(term)
            if any(key in _key(t).split() or _key(t) in key.split() or key == _key(t) for t in terms):
                continue
            terms.append(term)
            if len(terms) == top:
                break
        out.append(terms)
    return out


def label_text(terms: Sequence[str], n: int = LABEL_TERMS) -> str:
    """A short label: the first ``n`` terms joined by a middle dot."""
    return " · ".join(terms[:n]) if terms else "(no distinctive terms)"


def label_clusters(conn: sqlite3.Connection, rowids: np.ndarray, xy: np.ndarray, fine: np.ndarray,
                   coarse: np.ndarray, parent: np.ndarray, *, sample: int = 100000, seed: int = 0) -> list[dict]:
    """Cluster rows (both levels) for :func:`paperwire.store.topics.replace_map`.

    Terms come from at most ``sample`` papers' texts (evenly sampled) to bound the cost at 1M.
    """
    n_fine = int(len(parent))
    n_coarse = int(parent.max() + 1)
    pick = np.arange(len(rowids))
    if len(pick) > sample:
        pick = np.sort(np.random.default_rng(seed).choice(len(rowids), size=sample, replace=False))
    texts_by_id = sql.paper_texts(conn, rowids[pick].tolist())
    texts = [texts_by_id.get(int(r), "") for r in rowids[pick]]
    fine_terms = c_tf_idf(texts, fine[pick], n_fine)
    coarse_terms = c_tf_idf(texts, coarse[pick], n_coarse)
    out = []
    for level, labels, terms_list, count in (("fine", fine, fine_terms, n_fine),
                                              ("coarse", coarse, coarse_terms, n_coarse)):
        sizes = np.bincount(labels, minlength=count)
        for c in range(count):
            members = labels == c
            cx, cy = (np.median(xy[members], axis=0) if members.any() else (0.5, 0.5))
            out.append({"level": level, "id": c, "parent": int(parent[c]) if level == "fine" else None,
                        "label": label_text(terms_list[c]), "terms": terms_list[c], "size": int(sizes[c]),
                        "x": float(cx), "y": float(cy)})
    return out
