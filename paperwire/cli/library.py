"""``paperwire library ...``: add, remove, list, import, export, folders, and the user's data."""

from __future__ import annotations

import sys

import click

from paperwire.cli.common import echo_json, fail, pass_ctx


def _user_id(ctx, name: str) -> int:
    from paperwire.store import accounts

    user = accounts.find_user(ctx.conn, name)
    if user is None:
        fail(f"no user {name!r} (create one with: paperwire user create NAME --email ...)")
    return user["id"]


def _public(p: dict) -> dict:
    return {"id": p["paper_id"], "title": p["title"], "authors": p.get("authors", []),
            "published": p.get("published"), "saved_at": p["saved_at"], "read": p["read"], "read_at": p["read_at"],
            "note": p["note"], "tags": p["tags"], "folders": [f["name"] for f in p["folders"]]}


@click.group("library")
def library() -> None:
    """A reader's library: saved papers, folders, tags, notes; import and export."""


@library.command("add")
@click.option("--user", "username", required=True, help="The account (username or e-mail).")
@click.option("--folder", help="Also put the papers in this folder (created if missing).")
@click.argument("ids", nargs=-1, required=True)
@pass_ctx
def add_cmd(ctx, username, folder, ids):
    """Save papers (arXiv ids or paperwire ids) to the user's library."""
    from paperwire import library as lib

    uid = _user_id(ctx, username)
    try:
        result = lib.add_many(ctx.conn, uid, list(ids), source="cli")
        if folder:
            f = lib.ensure_folder(ctx.conn, uid, folder)
            for pid in result["added"] + result["already"]:
                lib.add_to_folder(ctx.conn, uid, f["id"], pid)
    except lib.LibraryError as exc:
        fail(str(exc))
    for pid in result["added"]:
        click.echo(f"saved {pid}")
    for pid in result["already"]:
        click.echo(f"already saved {pid}")
    for ident in result["missing"]:
        click.echo(f"Error: no paper {ident!r}", err=True)
    if result["missing"]:
        sys.exit(1)


@library.command("remove")
@click.option("--user", "username", required=True)
@click.argument("ids", nargs=-1, required=True)
@pass_ctx
def remove_cmd(ctx, username, ids):
    """Remove papers from the user's library."""
    from paperwire import library as lib

    result = lib.remove_many(ctx.conn, _user_id(ctx, username), list(ids))
    for pid in result["removed"]:
        click.echo(f"removed {pid}")
    for pid in result["not_saved"]:
        click.echo(f"not in the library: {pid}")
    for ident in result["missing"]:
        click.echo(f"Error: no paper {ident!r}", err=True)
    if result["missing"]:
        sys.exit(1)


@library.command("list")
@click.option("--user", "username", required=True)
@click.option("--folder", help="Only this folder (name or slug).")
@click.option("--tag", help="Only papers with this tag.")
@click.option("--read/--unread", "read", default=None, help="Only read / unread papers.")
@click.option("-q", "--query", default="", help="Search inside the library.")
@click.option("--sort", type=click.Choice(["saved", "saved_asc", "published", "title"]), default="saved",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help='{"papers": [...]}')
@pass_ctx
def list_cmd(ctx, username, folder, tag, read, query, sort, as_json):
    """List the user's saved papers."""
    from paperwire import library as lib

    try:
        res = lib.list_library(ctx.conn, _user_id(ctx, username), q=query, folder_ident=folder, tag=tag,
                               read=read, sort=sort, limit=None)
    except lib.LibraryError as exc:
        fail(str(exc))
    papers = [_public(p) for p in res["papers"]]
    if as_json:
        echo_json({"papers": papers, "total": res["total"]})
        return
    for p in papers:
        flags = ("read " if p["read"] else "     ") + (f"[{', '.join(p['tags'])}] " if p["tags"] else "")
        click.echo(f"{p['id']:<18} {flags}{p['title'][:90]}")
    click.echo(f"{res['total']} saved papers", err=True)


@library.command("import")
@click.option("--user", "username", required=True)
@click.option("--folder", help="Put the imported papers in this folder (created if missing).")
@click.option("--json", "as_json", is_flag=True, help="The full report as JSON.")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def import_cmd(ctx, username, folder, as_json, file):
    """Import BibTeX, RIS, CSL-JSON or a list of arXiv ids / DOIs into the user's library."""
    from paperwire.library import LibraryError
    from paperwire.library.importing import import_file

    uid = _user_id(ctx, username)
    try:
        report = import_file(ctx.conn, uid, file, folder=folder)
    except LibraryError as exc:
        fail(str(exc))
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(report.summary())
    for m in report.malformed:
        click.echo(f"{file}:{m['line']}: skipped malformed entry{' ' + m['key'] if m['key'] else ''}: {m['error']}",
                   err=True)
    for u in report.unmatched:
        label = u["key"] or u["title"] or ""
        extra = (f"; arXiv {u['arxiv_id']} queued for fetching (saved when it arrives)"
                 if u["queued"] else "")
        click.echo(f"{file}:{u['line']}: no match for {label}{extra}", err=True)


@library.command("export")
@click.option("--user", "username", required=True)
@click.option("--folder", help="Only this folder (name or slug).")
@click.option("--format", "fmt", type=click.Choice(["bibtex", "ris", "csl-json"]), default="bibtex",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@pass_ctx
def export_cmd(ctx, username, folder, fmt, output):
    """Export the library (or one folder) as BibTeX, RIS or CSL-JSON."""
    from paperwire.library import LibraryError
    from paperwire.library.exporting import export_library

    try:
        text = export_library(ctx.conn, _user_id(ctx, username), fmt, folder)
    except LibraryError as exc:
        fail(str(exc))
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


@library.command("folders")
@click.option("--user", "username", required=True)
@click.option("--create", "create", help="Create a folder with this name.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def folders_cmd(ctx, username, create, as_json):
    """List (or create) the user's folders."""
    from paperwire import library as lib

    uid = _user_id(ctx, username)
    if create:
        try:
            lib.create_folder(ctx.conn, uid, create)
        except lib.LibraryError as exc:
            fail(str(exc))
    folders = lib.folders(ctx.conn, uid)
    if as_json:
        echo_json({"folders": folders})
        return
    for f in folders:
        click.echo(f"{f['slug']:<30} {f['count']:>5}  {'public' if f['is_public'] else 'private'}  {f['name']}")


@library.command("data")
@click.option("--user", "username", required=True)
@pass_ctx
def data_cmd(ctx, username):
    """Everything stored about the user, as JSON ("Download my data")."""
    from paperwire.library.userdata import export_user_data

    echo_json(export_user_data(ctx.conn, _user_id(ctx, username)))


COMMANDS = [library]
