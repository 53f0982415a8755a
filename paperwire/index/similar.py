"""Similar papers: per-paper top-k neighbour lists, computed at index time.

New or re-texted papers get an exact top-k list against every visible paper's vector;
then each new paper is offered to its neighbours' lists ("symmetric insertion"), so
older papers see newer related work without recomputing the whole corpus. Lists are
stored in ``search_similar`` (one JSON row per paper) so a lookup is one primary-key
read. Without vectors, :func:`paperwire.index.search.similar` falls back to a lexical
"more like this" query.
"""

from __future__ import annotations

import sqlite3
import sys

import numpy as np

from paperwire.store import search as sql
from paperwire.store.db import transaction

BATCH = 512
# Above this many vectors, neighbour lists come from the (HNSW) query index one paper at a
# time instead of exact batched matrix products (which grow with n^2).
EXACT_MAX = 50_000
# Papers per batched HNSW query (and per commit) when lists come from the index.
INDEX_BATCH = 4096


def refresh_similar(conn: sqlite3.Connection, model: str, *, progress: bool = False, k: int = 20) -> dict:
    """Compute lists for papers whose list is missing or stale; insert them into their
    neighbours' lists. Resumable: each batch commits on its own."""
    from paperwire.index.semantic import get_view

    stats = {"computed": 0, "inserted_into_others": 0}
    from paperwire.store import embeddings as emb_store

    if emb_store.embedding_count(conn, model) > EXACT_MAX:
        return _refresh_with_index(conn, model, progress=progress, k=k, stats=stats)
    view = get_view(conn, model, force_check=True)
    if len(view) < 2:
        return stats
    pos = view.position()
    todo = [(r, h) for r, h in sql.papers_without_similar(conn, model) if r in pos]

    def lists_for(part):
        ids = np.array([r for r, _ in part], np.int64)
        nn_ids, nn_sc = view.top_many(view.matrix[[pos[int(r)] for r in ids]], k, exclude=ids)
        return [[(int(n), float(s)) for n, s in zip(nn_ids[i], nn_sc[i]) if n >= 0] for i in range(len(part))]

    return _run_batches(conn, model, todo, BATCH, lists_for, progress=progress, k=k, stats=stats)


def _run_batches(conn, model, todo, batch, lists_for, *, progress, k, stats) -> dict:
    """Compute (``lists_for(part)``) and commit the lists of ``todo`` a batch at a time."""
    if not todo:
        return stats
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="similar", unit="paper", file=sys.stderr, leave=False, dynamic_ncols=True)
    fresh: set[int] = set()  # lists computed in this run are exact already
    for a in range(0, len(todo), batch):
        part = todo[a : a + batch]
        _commit_batch(conn, model, part, lists_for(part), fresh, k, stats)
        if bar:
            bar.update(len(part))
    if bar:
        bar.close()
    return stats


def _commit_batch(conn, model, part, lists, fresh, k, stats) -> None:
    """Store the batch's own lists and offer each paper to its neighbours' lists."""
    own = []
    offers: dict[int, list[tuple[int, float]]] = {}
    for (rowid, h), lst in zip(part, lists):
        own.append((rowid, h, model, lst))
        for n, s in lst:
            offers.setdefault(n, []).append((rowid, s))
    fresh.update(int(r) for r, _ in part)
    targets = [n for n in offers if n not in fresh]
    existing = sql.get_similar_many(conn, targets)
    updates = []
    for n in targets:
        cur = existing.get(n)
        if cur is None or cur[1] != model:
            continue  # no list yet: it will be computed in full when its turn comes
        lst = [(int(x), float(s)) for x, s in cur[2]]
        have = {x for x, _ in lst}
        worst = lst[-1][1] if len(lst) >= k else -np.inf
        changed = False
        for p, s in offers[n]:
            if p not in have and s > worst:
                lst.append((p, s))
                have.add(p)
                changed = True
        if changed:
            lst.sort(key=lambda t: -t[1])
            updates.append((n, cur[0], model, lst[:k]))
    with transaction(conn):
        sql.put_similar(conn, own)
        sql.put_similar(conn, updates)
    stats["computed"] += len(own)
    stats["inserted_into_others"] += len(updates)


def _refresh_with_index(conn, model, *, progress, k, stats) -> dict:
    from paperwire.index.semantic import get_query_index

    idx = get_query_index(conn, model)
    todo = [(r, h) for r, h in sql.papers_without_similar(conn, model) if r in idx.index]

    def lists_for(part):
        found = idx.index.neighbours_of([r for r, _ in part], k)
        return [found.get(rowid, []) for rowid, _ in part]

    return _run_batches(conn, model, todo, INDEX_BATCH, lists_for, progress=progress, k=k, stats=stats)
