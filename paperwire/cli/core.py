"""Core commands: import, stats, show, export, demo."""

from __future__ import annotations

import sys

import click

from paperwire.cli.common import clip_line, echo_json, fail, pass_ctx
from paperwire.export import paper_to_json, to_bibtex_all, to_jsonl
from paperwire.ingest import StrictImportError
from paperwire.sources import FORMATS, import_files
from paperwire.sources.base import UnreadableFile
from paperwire.store import papers as store
from paperwire.store.dialect import db_label

MAX_ERRORS_SHOWN = 20


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", *FORMATS]), help="Force a format instead of detecting it.")
@click.option("--strict", is_flag=True, help="Abort on the first bad record and write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--batch-size", default=2000, show_default=True, hidden=True, type=click.IntRange(1, 100000),
              help="Records per transaction.")
@click.option("--year", type=click.IntRange(1991, 9999), default=None,
              help="Year of listing pages' dates (\"Mar 11\") [default: the latest such day not after the file's time].")
@pass_ctx
def import_cmd(ctx, paths, fmt, strict, as_json, batch_size, year):
    """Import paper metadata files (arXiv snapshot JSONL/CSV, listing pages, BEIR, HF daily papers, ...).

    Formats are detected from content. Bad records are reported with file and
    line and skipped (or, with --strict, abort the import with nothing written).
    Importing the same files again changes nothing.
    """
    try:
        report = import_files(ctx.conn, paths, fmt=fmt, strict=strict, batch_size=batch_size, year=year)
    except UnreadableFile as exc:
        fail(str(exc))
    except StrictImportError as exc:
        fail(f"{exc} (--strict: nothing was imported)")
    if as_json:
        echo_json(report.to_dict())
    else:
        for err in report.errors[:MAX_ERRORS_SHOWN]:
            click.echo(f"skipped {err}", err=True)
        if len(report.errors) > MAX_ERRORS_SHOWN:
            click.echo(f"... and {report.skipped - MAX_ERRORS_SHOWN} more skipped records", err=True)
        click.echo(report.summary())


@click.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def stats(ctx, as_json):
    """Papers in total, with arXiv id, by source, by year."""
    s = store.store_stats(ctx.conn)
    if as_json:
        echo_json(s)
        return
    click.echo(f"papers:        {s['papers']}")
    click.echo(f"with arXiv id: {s['with_arxiv_id']}")
    click.echo("by source:")
    for k, v in s["by_source"].items():
        click.echo(f"  {k:<16} {v}")
    click.echo("by year:")
    for k, v in s["by_year"].items():
        click.echo(f"  {k:<16} {v}")


@click.command()
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx, paper_id, as_json):
    """Show one paper by id, arXiv id (any version) or old alias."""
    paper = store.get_paper(ctx.conn, paper_id)
    if paper is None:
        fail(f"no paper {paper_id!r}")
    if as_json:
        echo_json(paper_to_json(paper))
        return
    click.echo(click.style(paper["title"], bold=True))
    if paper["authors"]:
        click.echo(", ".join(paper["authors"]))
    meta = [paper["paper_id"]]
    if paper["version"]:
        meta.append(f"v{paper['version']}")
    if paper["categories"]:
        meta.append(" ".join(paper["categories"]))
    if paper["published"]:
        meta.append(f"published {paper['published'][:10]}")
    if paper["updated"]:
        meta.append(f"updated {paper['updated'][:10]}")
    click.echo(" | ".join(meta))
    for label, key in (("DOI", "doi"), ("Journal", "journal_ref"), ("Comments", "comments"),
                       ("License", "license"), ("Abs", "abs_url"), ("PDF", "pdf_url"),
                       ("Code", "code_url"), ("Project", "project_url")):
        if paper.get(key):
            click.echo(f"{label}: {paper[key]}")
    click.echo("")
    click.echo(paper["abstract"])


@click.command()
@click.argument("paper_ids", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "bibtex"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-")
@pass_ctx
def export(ctx, paper_ids, fmt, output):
    """Export all papers, or the given ones, as JSON lines or BibTeX."""
    papers = store.iter_papers(ctx.conn, list(paper_ids) or None)
    lines = to_jsonl(papers) if fmt == "jsonl" else to_bibtex_all(papers)
    try:
        for line in lines:
            output.write(line + ("\n" if fmt == "jsonl" else "\n"))
    except KeyError as exc:
        fail(f"no paper {exc.args[0]!r}")


@click.command()
@click.option("--limit", default=10, show_default=True, help="Newest papers to show.")
@click.option("--no-serve", is_flag=True, help="Only import and list; do not start the site.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_ctx
def demo(ctx, limit, no_serve, host, port):
    """Load the bundled demo corpus on first run, list the newest papers, and serve the site."""
    from paperwire.demo import load_demo

    serve = None if no_serve else _find_serve()
    if serve is not None:
        from paperwire.web.server import PortInUse, check_port

        try:
            check_port(host, port)  # before the import: a busy port is one line, at once
        except PortInUse as exc:
            fail(str(exc))
    report = load_demo(ctx.conn, progress=sys.stderr.isatty())
    if report is None:
        click.echo(f"demo corpus already loaded in {db_label(ctx.settings.db_path)}")
    else:
        click.echo(f"demo corpus loaded into {db_label(ctx.settings.db_path)}: {report.summary()}")
    click.echo("")
    for p in store.newest_papers(ctx.conn, limit):
        click.echo(clip_line(f"{p['feed_date']}  {p['paper_id']:<18} ", p["title"]))
    if serve is None:
        return
    try:
        serve(ctx.settings, host=host, port=port, demo=True)
    except PortInUse as exc:  # taken while the demo loaded
        fail(str(exc))


def _find_serve():
    """The web server entry point, when the web part is installed in this build."""
    try:
        from paperwire.web.server import run_server
    except ImportError:
        return None
    return run_server


COMMANDS = [import_cmd, stats, show, export, demo]
