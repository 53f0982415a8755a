"""``paperwire feedback``, ``paperwire recommend``, ``paperwire follow``: the For-you feed."""

from __future__ import annotations

import click

from paperwire.cli.common import echo_json, fail, pass_ctx


def _user_id(ctx, name: str) -> int:
    from paperwire.store.feedback import user_id_by_name

    uid = user_id_by_name(ctx.conn, name)
    if uid is None:
        fail(f"no user {name!r}")
    return uid


@click.command("feedback")
@click.option("--user", "username", required=True, help="User name.")
@click.option("--not-interested", "not_interested", metavar="ID", help="Paper to mark not interested.")
@click.option("--more-like-this", "more", metavar="ID", help="Paper to ask for more like.")
@click.option("--undo", is_flag=True, help="Take the feedback back.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def feedback_cmd(ctx, username: str, not_interested: str | None, more: str | None, undo: bool, as_json: bool) -> None:
    """Tell the For-you model what you do not (or do) want to see."""
    from paperwire import recommend as rec

    if bool(not_interested) == bool(more):
        fail("give exactly one of --not-interested ID or --more-like-this ID")
    uid = _user_id(ctx, username)
    kind, ident = ("not_interested", not_interested) if not_interested else ("more_like_this", more)
    try:
        fn = rec.not_interested if kind == "not_interested" else rec.more_like_this
        changed = fn(ctx.conn, uid, ident, undo=undo)
    except rec.RecommendError as exc:
        fail(str(exc))
    if as_json:
        echo_json({"paper": ident, "kind": kind, "undone": undo, "changed": changed})
    else:
        click.echo(f"{'removed' if undo else 'recorded'} {kind.replace('_', ' ')}: {ident}"
                   + ("" if changed else " (nothing to change)"))


@click.command("recommend")
@click.option("--user", "username", required=True, help="User name.")
@click.option("--window", type=click.Choice(["day", "week", "month", "all"]), default="week", show_default=True)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"hits": [{"id", "title", "score", "why"}]}.')
@pass_ctx
def recommend_cmd(ctx, username: str, window: str, limit: int, as_json: bool) -> None:
    """Papers picked for a user (never ones in the library or marked not interested)."""
    from paperwire import recommend as rec

    uid = _user_id(ctx, username)
    res = rec.recommend(ctx.conn, uid, window=window, limit=limit)
    hits = [{"id": p["paper_id"], "title": p["title"], "score": p["score"], "why": p["why"]} for p in res.picks]
    if as_json:
        echo_json({"hits": hits, "mode": res.info["mode"], "window": window,
                   "since": res.info["since"], "until": res.info["until"]})
        return
    if not hits:
        click.echo("nothing to recommend in this window")
    for i, h in enumerate(hits, 1):
        click.echo(f"{i:3}. {h['id']}  {h['title']}\n     {h['why']}")


@click.command("follow")
@click.option("--user", "username", required=True, help="User name.")
@click.option("--category", help="arXiv category, e.g. cs.CL.")
@click.option("--author", help="Author name.")
@click.option("--keyword", help="Words to match.")
@click.option("--undo", is_flag=True, help="Unfollow.")
@click.option("--list", "list_only", is_flag=True, help="Only list what the user follows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def follow_cmd(ctx, username, category, author, keyword, undo, list_only, as_json) -> None:
    """Follow authors, categories or keywords (the For-you feed and the digest use them)."""
    from paperwire import recommend as rec

    uid = _user_id(ctx, username)
    given = [(k, v) for k, v in (("category", category), ("author", author), ("keyword", keyword)) if v]
    if not list_only:
        if len(given) != 1:
            fail("give one of --category, --author or --keyword (or --list)")
        try:
            rec.follow(ctx.conn, uid, given[0][0], given[0][1], undo=undo)
        except rec.RecommendError as exc:
            fail(str(exc))
    items = rec.follows(ctx.conn, uid)
    if as_json:
        echo_json({"follows": items})
    else:
        for f in items:
            click.echo(f"{f['kind']:9} {f['label'] or f['value']}")


COMMANDS = [feedback_cmd, recommend_cmd, follow_cmd]
