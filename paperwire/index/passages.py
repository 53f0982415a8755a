"""Passage-level scoring: a query against the best-matching sentence of each abstract.

A claim or a narrow need often matches one sentence of an abstract, not the average of all
of them that the paper vector is. At index time each abstract is split into sentences
(:func:`split_passages`), each prefixed with the title, and embedded with the paper's model
(:func:`update_passages`; stored int8 in ``passage_vectors``). At query time the hybrid
search's candidates, a hundred at most, get a semantic score of
``(1 - PASSAGE_WEIGHT) * paper cosine + PASSAGE_WEIGHT * best passage cosine``
(:func:`blend_cosines`) before fusion. Tuned on SciFact train with the lexical title weight
(BENCHMARKS.md, "Search quality levers, round 2"): train 0.7421 -> 0.7494 nDCG@10, test
0.7319 -> 0.7448.

Semantic mode re-orders its 50 nearest papers by the same blend, with the best passage
weighing ``FusionParams.semantic_passage_weight`` (:func:`rerank_head`).

The semantic *candidates* still come from the paper vectors' index, so memory per node is
unchanged; passages are read from the store for the candidates only. A paper without
passage vectors yet (indexed before this step ran) keeps its paper cosine. Set
``PAPERWIRE_PASSAGES=0`` to skip the step (its cost: about 2x the paper embedding CPU and
7.8x the vectors on disk, as int8 about 2x the float32 paper vectors).
"""

from __future__ import annotations

import os
import re

import numpy as np

from paperwire.model import collapse_ws
from paperwire.store import passages as sql

# Weight of the best passage in a candidate's semantic score (train-best of 0.3-1.0).
PASSAGE_WEIGHT = 0.7
MIN_CHARS = 60      # shorter sentences join the next one ("We propose X." is not a passage)
MAX_CHARS = 400     # a passage's sentence is cut here (the title comes on top)
BATCH_PAPERS = 64   # papers whose passages are embedded and committed together

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def enabled() -> bool:
    """Whether ``paperwire index`` computes passage vectors (``PAPERWIRE_PASSAGES=0``: no)."""
    return os.environ.get("PAPERWIRE_PASSAGES", "1").strip().lower() not in ("0", "false", "no", "off")


def split_passages(title: str, abstract: str) -> list[str]:
    """The passages embedded for a paper: each sentence of the abstract (short ones joined to
    the next, long ones cut), prefixed with ``"<title>. "``; just the title without an abstract."""
    title = collapse_ws(title or "")
    parts, cur = [], ""
    for s in _SENTENCE_END.split(collapse_ws(abstract or "")):
        s = s.strip()
        if s:
            cur = f"{cur} {s}".strip()
            if len(cur) >= MIN_CHARS:
                parts.append(cur)
                cur = ""
    if cur:
        parts.append(cur)
    parts = list(dict.fromkeys(p for p in parts if p))
    return [f"{title}. {p[:MAX_CHARS]}" for p in parts] or ([title] if title else [])


def update_passages(conn, embedder, *, progress: bool = False, stop=None) -> dict:
    """Embed the passages of papers whose current text has none for this embedder.

    Runs after the paper vectors (a new paper is searchable before its passages exist).
    Each batch of papers is one transaction, and the "done up to revision R" mark moves only
    at the end, so a killed run is resumed by running it again; committed papers are skipped
    by their content hash. ``stop()`` returning True ends the run after a batch.
    """
    from paperwire.index.build import run_batches, texts_missing

    model = embedder.name
    key = f"passage_rev:{model}"
    stats = {"papers": 0, "passages": 0}
    todo, _, upto = texts_missing(conn, key, lambda hashes: sql.missing_passages(conn, model, hashes))
    if upto is None:
        return stats

    def embed(part) -> None:
        texts = [split_passages(t, a) for _, (t, a) in part]
        flat = [p for ps in texts for p in ps]
        vecs = embedder.encode(flat) if flat else np.zeros((0, 1), np.float32)
        out, at = [], 0
        for (h, _), ps in zip(part, texts):
            out.append((h, vecs[at : at + len(ps)]))
            at += len(ps)
        sql.put_passages(conn, model, out)
        stats["papers"] += len(part)
        stats["passages"] += len(flat)

    if not run_batches(conn, list(todo.items()), BATCH_PAPERS, embed, desc=f"passages {model}", progress=progress,
                       state_key=key, upto=upto, stop=stop):
        stats["stopped"] = True
    return stats


def best_passage_cosines(rows, qvec: np.ndarray) -> dict[int, float]:
    """``{rowid: best passage cosine}`` from :func:`paperwire.store.passages.passage_rows`
    output: one int8 matrix product for every candidate's passages together."""
    rows = [r for r in rows if r[1] > 0]
    if not rows:
        return {}
    dim = rows[0][2]
    counts = np.fromiter((n for _, n, _, _ in rows), np.int64, len(rows))
    scales = np.frombuffer(b"".join(memoryview(b)[: 4 * n] for _, n, _, b in rows), dtype="<f4")
    ints = np.frombuffer(b"".join(memoryview(b)[4 * n : 4 * n + n * dim] for _, n, _, b in rows), dtype=np.int8)
    cos = (ints.reshape(-1, dim).astype(np.float32) @ np.asarray(qvec, np.float32)) * scales
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    best = np.maximum.reduceat(cos, starts)
    return {r[0]: float(b) for r, b in zip(rows, best)}


def blend_cosines(conn, model: str, qvec: np.ndarray, cosines: dict[int, float],
                  weight: float = PASSAGE_WEIGHT) -> dict[int, float]:
    """Each candidate's semantic score: its paper cosine blended with its best passage's
    cosine; candidates without passage vectors keep their paper cosine. Returns
    ``cosines`` itself when no candidate has passages."""
    if not cosines or weight <= 0:
        return cosines
    best = best_passage_cosines(sql.passage_rows(conn, model, list(cosines)), qvec)
    if not best:
        return cosines
    out = dict(cosines)
    for rowid, b in best.items():
        out[rowid] = (1.0 - weight) * cosines[rowid] + weight * b
    return out


def rerank_head(conn, model: str, qvec: np.ndarray, nearest: list[tuple[int, float]], head: int,
                weight: float) -> list[tuple[int, float]]:
    """Semantic mode: the first ``head`` of ``nearest`` (rowid, cosine, best first) re-ordered
    by their blended scores (:func:`blend_cosines`); the rest keep their cosine order below
    them. Only the head is re-ordered, so every page of a query, shallow or deep, comes from
    one ordering (the first ``head`` of a deeper exact list are the same papers)."""
    if head <= 0 or weight <= 0 or not nearest:
        return nearest
    top = dict(nearest[:head])
    blended = blend_cosines(conn, model, qvec, top, weight)
    if blended is top:
        return nearest
    order = sorted(top, key=lambda r: (-blended[r], r))
    return [(r, blended[r]) for r in order] + nearest[head:]


def rescorer(conn, model: str, qvec: np.ndarray, fusion):
    """The ``rescore`` of :func:`paperwire.index.hybrid.fuse` for one query: cosines ->
    (blended semantic scores, the lexical weight that goes with them: ``fusion.passage_alpha``
    when some candidate had passages, else ``fusion.alpha``)."""

    def rescore(cosines: dict[int, float]):
        blended = blend_cosines(conn, model, qvec, cosines, fusion.passage_weight)
        return blended, (fusion.alpha if blended is cosines else fusion.passage_alpha)

    return rescore
