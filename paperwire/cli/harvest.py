"""``paperwire`` commands for the harvest area: harvest, sync-hf, sync (see paperwire.cli)."""

from __future__ import annotations

import click

from paperwire.cli.common import echo_json, fail, pass_ctx

MAX_ERRORS_SHOWN = 20


def _settings(ctx, delay: float | None):
    s = ctx.settings
    if delay is not None:
        s.harvest_delay = delay
    return s


def _show_errors(errors: list[str], total: int) -> None:
    for e in errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"skipped {e}", err=True)
    if total > MAX_ERRORS_SHOWN:
        click.echo(f"... and {total - MAX_ERRORS_SHOWN} more skipped records", err=True)


@click.command()
@click.option("--set", "sets", multiple=True, metavar="SET",
              help="OAI-PMH set, e.g. cs or physics:hep-th (repeatable) [default: $PAPERWIRE_HARVEST_SETS].")
@click.option("--from", "from_date", metavar="YYYY-MM-DD", help="Records changed on or after this day "
              "[default: resume, else the last harvested datestamp].")
@click.option("--until", metavar="YYYY-MM-DD", help="Records changed on or before this day.")
@click.option("--base-url", metavar="URL", help="OAI-PMH endpoint [default: $PAPERWIRE_OAI_BASE_URL].")
@click.option("--metadata-prefix", default="arXivRaw", show_default=True, type=click.Choice(["arXivRaw", "arXiv"]),
              help="arXivRaw carries version numbers, so newer versions replace older ones.")
@click.option("--delay", type=float, metavar="SECONDS", help="Seconds between requests [default: $PAPERWIRE_HARVEST_DELAY, 3].")
@click.option("--max-pages", type=int, help="Stop after this many pages (the next run resumes).")
@click.option("--status", "show_status", is_flag=True, help="Show the stored cursors and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def harvest(ctx, sets, from_date, until, base_url, metadata_prefix, delay, max_pages, show_status, as_json):
    """Harvest new and changed arXiv papers over OAI-PMH (incremental, resumable after a crash)."""
    from paperwire.harvest import HarvestError, PoliteFetcher
    from paperwire.harvest import harvest as run_harvest
    from paperwire.sync import HarvestBusy, harvest_lock, harvest_sets

    if show_status:
        _status(ctx.conn, as_json)
        return
    settings = _settings(ctx, delay)
    targets = list(sets) or harvest_sets(settings)
    conn = ctx.conn
    reports, failed = [], None
    fetcher = PoliteFetcher(settings)

    def progress(rep):
        if not as_json:
            click.echo(f"{rep.set_spec or '(all)'}: page {rep.pages}, {rep.records} records "
                       f"({rep.added} added, {rep.updated} updated)", err=True)

    try:
        with harvest_lock(settings.db_path):
            for set_spec in targets:
                try:
                    rep = run_harvest(conn, settings, set_spec=set_spec, from_date=from_date, until=until,
                                      metadata_prefix=metadata_prefix, base_url=base_url, fetcher=fetcher,
                                      max_pages=max_pages, on_page=progress)
                except HarvestError as exc:
                    failed = f"{set_spec or '(all)'}: {exc} (committed pages are kept; rerun to resume)"
                    break
                reports.append(rep)
    except (HarvestBusy, ValueError) as exc:
        fail(str(exc))
    finally:
        fetcher.close()
    if as_json:
        echo_json({"ok": failed is None, "error": failed, "sets": [r.to_dict() for r in reports]})
    else:
        for rep in reports:
            _show_errors(rep.errors, rep.skipped)
            extra = f", {rep.deleted} deleted upstream" if rep.deleted else ""
            extra += f", {rep.stale} older than stored" if rep.stale else ""
            how = " (resumed)" if rep.resumed else ""
            click.echo(f"{rep.set_spec or '(all)'}: {rep.status}{how}: {rep.pages} pages, {rep.added} added, "
                       f"{rep.updated} updated, {rep.unchanged} unchanged, {rep.skipped} skipped{extra}; "
                       f"next run from {rep.last_datestamp or 'the beginning'}")
    if failed:
        fail(failed)


def _status(conn, as_json: bool) -> None:
    from paperwire.store import harvest as hsql

    states = hsql.all_states(conn)
    if as_json:
        echo_json(states)
        return
    if not states:
        click.echo("no harvest yet")
    for st in states:
        click.echo(f"{st['base_url']} {st['metadata_prefix']} set={st['set_spec'] or '(all)'}")
        click.echo(f"  next incremental run from: {st['last_datestamp'] or 'the beginning'}"
                   f" (last finished {st['last_completed_at'] or 'never'})")
        if st["run_status"] == "running":
            click.echo(f"  interrupted run: {st['run_pages']} pages, {st['run_records']} records committed; "
                       f"rerun to resume (from={st['run_from'] or '-'}, until={st['run_until'] or '-'})")
        if st["last_error"]:
            click.echo(f"  last error: {st['last_error']}")


@click.command("sync-hf")
@click.option("--date", metavar="YYYY-MM-DD", help="Day of the daily-papers list [default: today, UTC].")
@click.option("--base-url", metavar="URL", help="HF-compatible server [default: $PAPERWIRE_HF_BASE_URL].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def sync_hf_cmd(ctx, date, base_url, as_json):
    """Import a day's Hugging Face daily papers (with upvotes and submitter)."""
    from paperwire.harvest import HarvestError, sync_hf

    try:
        rep = sync_hf(ctx.conn, ctx.settings, date=date, base_url=base_url)
    except (HarvestError, ValueError) as exc:
        fail(str(exc))
    rep.pop("changed_ids", None)
    if as_json:
        echo_json(rep)
        return
    _show_errors(rep["errors"], rep["skipped"])
    click.echo(f"{rep['date']}: {rep['entries']} entries: {rep['added']} added, {rep['updated']} updated, "
               f"{rep['unchanged']} unchanged, {rep['skipped']} skipped")


@click.command()
@click.option("--no-hf", is_flag=True, help="Skip the Hugging Face daily-papers step.")
@click.option("--no-index", is_flag=True, help="Skip updating the search index and similar papers.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def sync(ctx, no_hf, no_index, as_json):
    """Harvest, fetch submitted papers, sync HF daily papers, then index what is new (for cron)."""
    from paperwire.sync import run_sync

    rep = run_sync(ctx.conn, ctx.settings, hf=not no_hf, index=not no_index)
    if as_json:
        echo_json(rep)
    else:
        for h in rep["harvest"]:
            click.echo(f"harvest {h['set_spec'] or '(all)'}: {h['status']}, {h['added']} added, "
                       f"{h['updated']} updated, {h['skipped']} skipped")
        if rep["submissions"]:
            s = rep["submissions"]
            click.echo(f"submissions: {s.get('done', 0)} fetched, {s.get('failed', 0)} failed")
        if isinstance(rep["hf"], dict) and "entries" in rep["hf"]:
            click.echo(f"hf {rep['hf']['date']}: {rep['hf']['added']} added, {rep['hf']['updated']} updated")
        idx = rep["index"]
        if isinstance(idx, str):
            click.echo(idx)
        elif isinstance(idx, dict):
            click.echo(f"index: updated in {idx.get('seconds', '?')}s" +
                       "".join(f"; {n}" for n in idx.get("notes", [])))
        click.echo(f"{rep['changed']} papers new or changed in {rep['seconds']}s")
        for e in rep["errors"]:
            click.echo(f"Error: {e}", err=True)
    if not rep["ok"]:
        raise SystemExit(1)


COMMANDS: list = [harvest, sync_hf_cmd, sync]
