"""``paperwire`` commands for the search area: index, search, similar, eval."""

from __future__ import annotations

import json
import sys

import click

from paperwire.cli.common import clip_line, echo_json, fail, pass_ctx

MODE = click.Choice(["hybrid", "lexical", "semantic"])


def _embedder_arg(name: str | None):
    if not name:
        return None
    from paperwire.index.embeddings import EmbedderUnavailable, get_embedder

    try:
        return get_embedder(name)
    except (EmbedderUnavailable, ValueError) as exc:
        fail(str(exc))


@click.command("index")
@click.option("--embedder", default=None, help="Embedding backend: auto (default), onnx, torch, fake.")
@click.option("--lexical-only", is_flag=True, help="Build only the lexical index (no embeddings, no similar lists).")
@click.option("--no-passages", is_flag=True,
              help="Skip the sentence vectors of passage scoring (also PAPERWIRE_PASSAGES=0): about half the embedding CPU.")
@click.option("--prune", is_flag=True, help="Also delete stored vectors of texts no paper has any more (edited abstracts).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def index_cmd(ctx, embedder, lexical_only, no_passages, prune, no_progress, as_json):
    """Build or update the search indexes (only new and changed papers are processed).

    Safe to interrupt and rerun: finished batches are kept, the rest is redone.
    """
    from paperwire.index.build import update_index

    emb = None if lexical_only else _embedder_arg(embedder)
    report = update_index(ctx.conn, embedder=emb, progress=not no_progress and sys.stderr.isatty(),
                          semantic=not lexical_only, passages=False if no_passages else None)
    if prune:
        from paperwire.store.embeddings import prune_embeddings
        from paperwire.store.passages import prune_passages

        report["pruned"] = {"vectors": prune_embeddings(ctx.conn), "passages": prune_passages(ctx.conn)}
    if as_json:
        echo_json(report)
        return
    lex = report["lexical"]
    click.echo(f"lexical: {lex['indexed']} indexed ({lex['scanned']} scanned, {lex['removed']} removed)")
    if "embeddings" in report:
        e, s = report["embeddings"], report["similar"]
        click.echo(f"embeddings [{report['model']}]: {e['embedded']} embedded, {e['cached']} from cache")
        click.echo(f"similar: {s['computed']} lists computed, {s['inserted_into_others']} lists updated")
    if "passages" in report:
        p = report["passages"]
        click.echo(f"passages: {p['passages']} embedded for {p['papers']} papers")
    if prune:
        click.echo(f"pruned: {report['pruned']['vectors']} paper vectors, {report['pruned']['passages']} papers' passages")
    for note in report["notes"]:
        click.echo(f"note: {note}", err=True)
    click.echo(f"done in {report['seconds']:.1f}s")


def _hit_json(h) -> dict:
    p = h.paper
    return {"id": h.paper_id, "title": h.title, "score": h.score, "snippet": h.snippet,
            "authors": p.get("authors", []), "published": p.get("published"), "feed_date": p.get("feed_date"),
            "categories": p.get("categories", []), "upvotes": (p.get("upvotes") or 0) + (p.get("local_upvotes") or 0)}


def _run_batch(conn, path, limit, mode, embedder):
    from paperwire.index.search import QueryError, search

    try:
        fh = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: {exc.strerror}")
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                qid, text = str(obj["_id"]), str(obj["text"])
            except (json.JSONDecodeError, KeyError, TypeError):
                fail(f"{path}:{lineno}: expected a JSON object with \"_id\" and \"text\"")
            out = {"query_id": qid, "hits": []}
            try:
                res = search(conn, text[:250], mode=mode, limit=limit, embedder=embedder, with_snippets=False)
                out["hits"] = [{"id": h.paper_id, "score": h.score} for h in res.hits]
                if res.mode != mode:
                    out["mode"] = res.mode
            except QueryError as exc:
                out["error"] = str(exc)
            click.echo(json.dumps(out, ensure_ascii=False))


@click.command("search")
@click.argument("query", required=False)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0, 999))
@click.option("--mode", default="hybrid", show_default=True, type=MODE)
@click.option("--sort", default="relevance", show_default=True, type=click.Choice(["relevance", "date", "votes"]))
@click.option("--batch", "batch", type=click.Path(dir_okay=False, allow_dash=True),
              help='Run every query of a JSONL file ({"_id", "text"} a line); prints one JSON line per query.')
@click.option("--embedder", default=None, help="Embedding backend for the query (default: the one the index was built with).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def search_cmd(ctx, query, limit, offset, mode, sort, batch, embedder, as_json):
    """Search papers. Syntax: words, "phrases", -exclude, author:NAME, cat:cs.CL,
    year:2023 (or 2019-2021), after:2024-01-01, before:2024-07-01."""
    from paperwire.index.search import QueryError, search

    emb = _embedder_arg(embedder)
    if batch:
        if query:
            fail("give either QUERY or --batch, not both")
        _run_batch(ctx.conn, batch, limit, mode, emb)
        return
    if query is None:
        fail("missing QUERY (or --batch FILE)")
    try:
        res = search(ctx.conn, query, mode=mode, limit=limit, offset=offset, sort=sort, embedder=emb)
    except QueryError as exc:
        fail(str(exc))
    if as_json:
        echo_json([_hit_json(h) for h in res.hits])
        for note in res.notes:
            click.echo(f"note: {note}", err=True)
        return
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    if not res.hits:
        click.echo("no results")
        return
    click.echo(f"{res.total_text()} results ({res.mode}); showing {offset + 1}-{offset + len(res.hits)}")
    for i, h in enumerate(res.hits, offset + 1):
        p = h.paper
        authors = ", ".join(p.get("authors", [])[:3]) + (" et al." if len(p.get("authors", [])) > 3 else "")
        date = (p.get("published") or p.get("feed_date") or "")[:10]
        click.echo(clip_line(f"{i:3d}. [{h.paper_id}] ", h.title, f"  ({h.score:.3f})"))
        meta = " | ".join(x for x in (authors, date) if x)
        if meta:
            click.echo(f"     {meta}")


@click.command("similar")
@click.argument("paper_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def similar_cmd(ctx, paper_id, limit, as_json):
    """Papers similar to PAPER_ID (precomputed by `paperwire index`; lexical without vectors)."""
    from paperwire.index.search import similar

    try:
        hits = similar(ctx.conn, paper_id, limit=limit)
    except KeyError:
        fail(f"no paper with id {paper_id!r}")
    if as_json:
        echo_json([_hit_json(h) for h in hits])
        return
    if not hits:
        click.echo("no similar papers")
    for i, h in enumerate(hits, 1):
        click.echo(clip_line(f"{i:3d}. [{h.paper_id}] ", h.title, f"  ({h.score:.3f})"))


@click.command("eval")
@click.argument("beir_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="test", show_default=True)
@click.option("--mode", default="hybrid", show_default=True, type=MODE)
@click.option("--embedder", default=None, help="Embedding backend (default auto: int8 MiniLM ONNX).")
@click.option("--scratch", type=click.Path(dir_okay=False), default=None,
              help="Scratch database [default: per-corpus file in the user cache dir, reused by reruns].")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_cmd(click_ctx, beir_dir, split, mode, embedder, scratch, as_json):
    """Evaluate search on a BEIR folder: nDCG@10 and Recall@100 (the --db store is not touched)."""
    from paperwire.index.evaluate import evaluate_beir

    emb = _embedder_arg(embedder) if mode != "lexical" else None
    try:
        out = evaluate_beir(beir_dir, split=split, mode=mode, db_path=scratch, embedder=emb,
                            progress=sys.stderr.isatty())
    except FileNotFoundError as exc:
        fail(str(exc))
    if as_json:
        echo_json(out)
        return
    for note in out["notes"]:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{beir_dir} [{split}, {out['queries']} queries, mode {out['mode']}]: "
               f"nDCG@10 {out['ndcg@10']:.4f}  Recall@100 {out['recall@100']:.4f}  "
               f"({out['query_ms_mean']:.1f} ms/query)")


COMMANDS: list = [index_cmd, search_cmd, similar_cmd, eval_cmd]
