"""``update_index``: bring the search indexes up to date with the store, incrementally.

Four steps, each resumable:

1. lexical: papers written since the last indexed store revision are (re)indexed in
   FTS5 if their indexed text (title, abstract, authors, categories) changed;
2. embeddings: papers whose ``content_hash`` has no cached vector for the model are
   embedded (the cache is keyed by content hash, so unchanged text is never embedded
   twice, even across databases rebuilt from the same data);
3. similar papers: papers whose neighbour list is missing or was computed for other
   text get a fresh top-k list, and are inserted into their neighbours' lists;
4. passages: each abstract's sentences embedded for passage-level scoring
   (:mod:`paperwire.index.passages`), keyed by content hash like the paper vectors.

Every batch is its own transaction and the "done up to revision R" marks move only
after a step finishes, so a run killed at any point (SIGKILL included) is resumed by
simply running it again; work already committed is skipped by the hash checks.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import time
from typing import Callable

from paperwire.index import spell
from paperwire.index.lexical import doc_fields
from paperwire.store import embeddings as emb_store
from paperwire.store import search as sql
from paperwire.store import vocab as vocab_sql
from paperwire.store.db import transaction
from paperwire.store.papers import count_papers

LEX_BATCH = 2000
EMBED_BATCH = 256
SIMILAR_K = 20  # neighbours kept per paper


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="paper", file=sys.stderr, leave=False, dynamic_ncols=True)


def _lex_hash(fields: tuple[str, str, str, str]) -> str:
    return hashlib.sha1("\x1f".join(fields).encode()).hexdigest()


def update_lexical(conn: sqlite3.Connection, *, progress: bool = False) -> dict:
    """Index new and changed papers in FTS5. Returns counts."""
    since = int(sql.get_state(conn, "lexical_rev", "0"))
    upto = sql.store_rev(conn)
    stats = {"scanned": 0, "indexed": 0, "removed": 0}
    vocab = spell.vocab_built(conn)
    recount = False  # PostgreSQL: a changed or removed paper's old text is not kept
    if upto > since:
        bar = _progress(sql.count_changed_between(conn, since, upto), "lexical", progress)
        after = 0
        while True:
            rows = sql.papers_changed_between(conn, since, upto, after, LEX_BATCH)
            if not rows:
                break
            after = rows[-1]["id"]
            have = sql.indexed_hashes(conn, [r["id"] for r in rows])
            docs = []
            for r in rows:
                fields = doc_fields(r["title"], r["abstract"], r["authors"], r["categories"])
                lh = _lex_hash(fields)
                if have.get(r["id"], (None, None))[1] != lh:
                    docs.append((r["id"], *fields, r["content_hash"], lh))
            if vocab and not vocab_sql.texts_kept(conn) and any(d[0] in have for d in docs):
                recount = True
            with transaction(conn):
                if vocab and not recount:
                    # The vocabulary moves with the index, in the same transaction.
                    old = vocab_sql.indexed_texts(conn, [d[0] for d in docs])
                    spell.apply_delta(conn, spell.delta_for(old, {d[0]: (d[1], d[2]) for d in docs}))
                stats["indexed"] += sql.write_lexical(conn, docs)
            stats["scanned"] += len(rows)
            if bar:
                bar.update(len(rows))
        if bar:
            bar.close()
    if sql.count_indexed(conn) > count_papers(conn):
        gone = sql.orphan_docs(conn)
        recount = recount or not vocab_sql.texts_kept(conn)
        with transaction(conn):
            if vocab and not recount:
                spell.apply_delta(conn, spell.delta_for(vocab_sql.indexed_texts(conn, gone), {}))
            sql.delete_docs(conn, gone)
            prev = sql.get_state(conn, "deleted_rowids", "")
            sql.set_state(conn, "deleted_rowids", ",".join(filter(None, [prev, ",".join(map(str, gone))])))
        stats["removed"] = len(gone)
    if stats["indexed"] > 5 * LEX_BATCH:
        sql.optimize_lexical(conn)
    if upto > since:
        with transaction(conn):
            sql.set_state(conn, "lexical_rev", upto)
    if not vocab or recount:
        # First run, or a store indexed before the vocabulary existed: count it all once.
        # (PostgreSQL also recounts after a paper changed or went: see texts_kept.)
        stats["vocabulary"] = spell.rebuild_vocab(conn)
    return stats


def texts_missing(conn, state_key: str, missing_of) -> tuple[dict[str, tuple[str, str]], int, int | None]:
    """Papers written since the revision mark ``state_key`` whose text ``missing_of(hashes)``
    says is not stored yet: ``({content_hash: (title, abstract)}, papers already stored,
    the store revision to move the mark to)``; the revision is None when nothing was written."""
    since = int(sql.get_state(conn, state_key, "0"))
    upto = sql.store_rev(conn)
    todo: dict[str, tuple[str, str]] = {}
    cached = after = 0
    if upto <= since:
        return todo, cached, None
    while True:
        rows = sql.papers_changed_between(conn, since, upto, after, 5000)
        if not rows:
            break
        after = rows[-1]["id"]
        missing = set(missing_of([r["content_hash"] for r in rows]))
        for r in rows:
            h = r["content_hash"]
            if h in missing:
                todo.setdefault(h, (r["title"], r["abstract"]))
            else:
                cached += 1
    return todo, cached, upto


def update_embeddings(conn: sqlite3.Connection, embedder, *, progress: bool = False) -> dict:
    """Embed papers whose current text has no cached vector for this embedder."""
    from paperwire.index.embeddings import paper_text

    model = embedder.name
    key = f"embed_rev:{model}"
    stats = {"embedded": 0, "cached": 0}
    todo, stats["cached"], upto = texts_missing(conn, key, lambda hashes: emb_store.missing_hashes(conn, model, hashes))
    if upto is None:
        return stats

    def embed(part) -> None:
        vecs = embedder.encode([paper_text(t, a) for _, (t, a) in part])
        emb_store.put_embeddings(conn, model, [h for h, _ in part], vecs)
        stats["embedded"] += len(part)

    run_batches(conn, list(todo.items()), EMBED_BATCH, embed, desc=f"embed {model}", progress=progress,
                state_key=key, upto=upto)
    return stats


def embed_missing(
    conn: sqlite3.Connection,
    embedder,
    *,
    batch: int = 512,
    include_hidden: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Embed every paper whose current text has no cached vector for ``embedder.name``.

    Unchanged text is never embedded twice (the cache is keyed by content hash; papers that
    share text share one vector). Commits every ``batch`` texts, so a kill loses at most one
    batch of work and a rerun resumes. Returns ``{"embedded": n, "papers": m, "seconds": s}``.
    """
    from paperwire.index.embeddings import paper_text

    t0 = time.perf_counter()
    rows = emb_store.papers_without_embedding(conn, embedder.name, include_hidden=include_hidden)
    by_hash: dict[str, str] = {}
    for r in rows:
        by_hash.setdefault(r["content_hash"], paper_text(r["title"], r["abstract"]))
    hashes = list(by_hash)
    done = 0
    for i in range(0, len(hashes), batch):
        part = hashes[i : i + batch]
        vecs = embedder.encode([by_hash[h] for h in part])
        emb_store.put_embeddings(conn, embedder.name, part, vecs)
        done += len(part)
        if progress:
            progress(done, len(hashes))
    return {"embedded": done, "papers": len(rows), "seconds": round(time.perf_counter() - t0, 3)}


def run_batches(conn, items: list, size: int, handle, *, desc: str, progress: bool, state_key: str, upto: int,
                stop=None) -> bool:
    """``handle(batch)`` for each ``size`` items (each batch commits its own work), with a
    progress bar; then the state mark ``state_key`` moves to revision ``upto``. ``stop()``
    returning True ends the run before a batch and leaves the mark: returns False then."""
    bar = _progress(len(items), desc, progress and bool(items))
    try:
        for i in range(0, len(items), size):
            if stop is not None and stop():
                return False
            part = items[i : i + size]
            handle(part)
            if bar:
                bar.update(len(part))
    finally:
        if bar:
            bar.close()
    with transaction(conn):
        sql.set_state(conn, state_key, upto)
    return True


def update_similar(conn: sqlite3.Connection, model: str, *, progress: bool = False, k: int = SIMILAR_K) -> dict:
    """Compute neighbour lists for papers lacking a current one (see :mod:`similar`)."""
    from paperwire.index.similar import refresh_similar

    return refresh_similar(conn, model, progress=progress, k=k)


def update_index(conn: sqlite3.Connection, *, embedder=None, progress: bool = False, semantic: bool = True,
                 passages: bool | None = None) -> dict:
    """Bring lexical index, embeddings and similar-paper lists up to date.

    ``embedder``: an Embedder, a backend name, or None for the default ("auto");
    ``semantic=False`` (or no embedding backend installed) builds the lexical index
    only -- search then runs lexically and says so in ``SearchResults.notes``;
    ``passages=False`` skips the passage vectors (None: unless ``PAPERWIRE_PASSAGES=0``).
    Returns a dict of what was done, including ``notes``.
    """
    t0 = time.perf_counter()
    report: dict = {"notes": []}
    report["lexical"] = update_lexical(conn, progress=progress)
    from paperwire.index.fastlex import update_fast

    report["fast"] = update_fast(conn, progress=progress)
    if "skipped" in report["fast"]:
        report["notes"].append(f"fast lexical index skipped ({report['fast']['skipped']}): FTS5 serves all queries")
    emb = None
    if semantic:
        if embedder is None or isinstance(embedder, str):
            from paperwire.index.embeddings import EmbedderUnavailable, get_embedder

            try:
                emb = get_embedder(embedder or "auto")
            except EmbedderUnavailable as exc:
                report["notes"].append(f"semantic index skipped: {exc}")
        else:
            emb = embedder
    if emb is not None:
        report["model"] = emb.name
        report["embeddings"] = update_embeddings(conn, emb, progress=progress)
        with transaction(conn):
            sql.set_state(conn, "model", emb.name)
        report["similar"] = update_similar(conn, emb.name, progress=progress)
        from paperwire.index.vectors import checkpoint

        checkpoint(conn, emb.name)  # the node's HNSW snapshot, if this run changed it enough
        from paperwire.index import passages as passage_index

        if passage_index.enabled() if passages is None else passages:
            # Last: new papers are searchable by their paper vectors before this (~2x their CPU).
            report["passages"] = passage_index.update_passages(conn, emb, progress=progress)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report
