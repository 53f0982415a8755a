"""``paperwire map build|status|place``: the topic map (thin adapter over paperwire.topics)."""

from __future__ import annotations

import click

from paperwire.cli.common import echo_json, fail, pass_ctx


@click.group("map")
def map_group() -> None:
    """The 2-D topic map of the corpus (/map, /trends, /api/v1/map)."""


@map_group.command("build")
@click.option("--max-fit", type=click.IntRange(100, 2_000_000), default=None,
              help="Fit UMAP on at most this many papers (the rest are placed from their neighbours) [20000].")
@click.option("--model", default=None, help="Embedding model to map [the one with the most stored vectors].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed + store = same map).")
@click.option("--json", "as_json", is_flag=True, help="Print the build summary as JSON.")
@pass_ctx
def build_cmd(ctx, max_fit, model, seed, as_json):
    """Refit the whole map (UMAP + clusters + labels); the old map stays until the new one is written."""
    from paperwire.topics import map as topic_map

    kw = {"model": model, "seed": seed}
    if max_fit:
        kw["max_fit"] = max_fit
    try:
        summary = topic_map.build_map(ctx.conn, progress=None if as_json else click.echo, **kw)
    except topic_map.MapUnavailable as exc:
        fail(str(exc))
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"map built: {summary['points']} papers ({summary['fitted']} fitted), "
                   f"{summary['coarse_clusters']} topics / {summary['fine_clusters']} sub-topics "
                   f"in {summary['total_s']} s")


@map_group.command("place")
@pass_ctx
def place_cmd(ctx):
    """Put papers embedded since the last build on the map (no refit)."""
    from paperwire.topics import map as topic_map

    echo_json(topic_map.place_new(ctx.conn))


@map_group.command("status")
@pass_ctx
def status_cmd(ctx):
    """What the map holds, and how many papers wait to be placed."""
    from paperwire.topics import map as topic_map

    echo_json(topic_map.map_status(ctx.conn))


COMMANDS = [map_group]
