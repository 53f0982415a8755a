"""``paperwire db copy SRC DST``: move an instance to another database (paperwire.store.copy)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from paperwire.cli.common import echo_json, fail


@click.group("db")
def db() -> None:
    """The store itself: move an instance between SQLite files and PostgreSQL."""


def _no_db(value) -> None:
    # Every other command takes its store from --db; this one names both on its line.
    if value is not None:
        raise click.UsageError("db copy takes the stores as SRC and DST, not --db")


def _open(target: str, role: str, *, must_exist: bool):
    from paperwire.store.db import StoreUnavailable, connect
    from paperwire.store.dialect import is_url

    if not is_url(target) and "://" not in target:
        path = Path(target)
        if must_exist and not path.is_file():
            fail(f"{role} database not found: {target}")
        if path.is_dir():
            fail(f"{role} {target} is a folder, not a database file")
    try:
        return connect(target)
    except StoreUnavailable as exc:
        fail(f"{role}: {exc}")
    except sqlite3.DatabaseError as exc:
        fail(f"{role} {target}: not a paperwire SQLite database ({exc})")


def _same_store(a: str, b: str) -> bool:
    from paperwire.store.dialect import describe_url, is_url

    if is_url(a) and is_url(b):
        da, dbb = describe_url(a), describe_url(b)
        return (da["host"], str(da["port"]), da["database"]) == (dbb["host"], str(dbb["port"]), dbb["database"])
    if is_url(a) or is_url(b):
        return False
    return Path(a).resolve() == Path(b).resolve()


class _Bars:
    """One tqdm bar per table on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def table(self, plan, total: int) -> None:
        self.close()
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=plan.name, unit="row", file=sys.stderr, leave=False,
                            dynamic_ncols=True)

    def rows(self, _name: str, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@db.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Rows per transaction.")
@click.option("--replace", is_flag=True, help="Empty DST first, even if it holds other data (destructive).")
@click.option("--verify", is_flag=True, help="Also compare a checksum of every table's rows, not only counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--db", hidden=True, expose_value=False, callback=lambda _c, _p, v: _no_db(v))
def copy_cmd(src, dst, batch, replace, verify, as_json):
    """Copy the whole store SRC into DST: a SQLite file or a postgresql:// URL each.

    Everything is copied (papers, users, votes, subscriptions and their ledger,
    embeddings, library, comments, tokens, topic map...), keeping every id. Killed
    at any point, the same command resumes where it stopped. DST must be empty or a
    partial copy of SRC (else --replace). Every table is counted on both sides at
    the end; the exit status is 1 on a mismatch. Stop writes to SRC while it runs.
    """
    from paperwire.crashpoints import CrashHook
    from paperwire.store.copy import CopyError, copy_store
    from paperwire.store.dialect import StoreUnavailable, db_label, is_url
    from paperwire.store.locks import LockBusy, exclusive

    if _same_store(src, dst):
        fail("SRC and DST are the same database")
    source = _open(src, "source", must_exist=not is_url(src))
    target = _open(dst, "destination", must_exist=False)
    bars = _Bars(sys.stderr.isatty() and not as_json)
    try:
        # Two copies into one destination would race for the same keys.
        with exclusive(dst, "db-copy", busy=f"another db copy into {db_label(dst)} is running"):
            report = copy_store(source, target, src_label=db_label(src), dst_label=db_label(dst), batch=batch,
                                replace=replace, verify=verify, progress=bars.rows, on_table=bars.table,
                                crash=CrashHook("PAPERWIRE_DB_COPY_CRASH_AT"))
            rebuilt = None
            if report.ok:
                _carry_secret(src, dst, source, target)
            if report.lexical_rebuild:
                from paperwire.index.build import update_lexical

                rebuilt = update_lexical(target, progress=bars.enabled)
    except (CopyError, LockBusy, StoreUnavailable) as exc:
        fail(str(exc))
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "psycopg":
            raise
        import psycopg

        what = ("lost the PostgreSQL store during the copy" if isinstance(exc, psycopg.OperationalError)
                else "PostgreSQL refused a statement of the copy")
        fail(f"{what} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
             "run the same command again to resume")
    finally:
        bars.close()
    if as_json:
        echo_json({"ok": report.ok, "resumed": report.resumed, "copied": report.copied, "seconds": report.seconds,
                   "sequences": report.sequences, "lexical_rebuilt": rebuilt,
                   "tables": [t.__dict__ for t in report.tables]})
    else:
        width = max((len(t.name) for t in report.tables), default=10)
        click.echo(f"{'table':<{width}}  {'source':>10}  {'copy':>10}  check")
        for t in report.tables:
            status = "ok" if t.ok else "MISMATCH " + t.note
            click.echo(f"{t.name:<{width}}  {t.source_rows:>10}  {t.dest_rows:>10}  {status}")
        if rebuilt is not None:
            click.echo(f"lexical index rebuilt on the destination: {rebuilt.get('indexed', 0)} papers")
        click.echo(f"{'resumed: ' if report.resumed else ''}copied {report.copied} rows from {db_label(src)} to "
                   f"{db_label(dst)} in {report.seconds:.1f}s; {len(report.tables)} tables checked")
    if not report.ok:
        bad = ", ".join(f"{t.name} ({t.note})" for t in report.mismatches())
        fail(f"the copy does not match its source: {bad}")


def _carry_secret(src: str, dst: str, source, target) -> None:
    """Move the instance's generated secret key with it: it signs sessions and the links in
    mails already sent. A SQLite store keeps it in ``<db>.secret-key``, a PostgreSQL store
    in ``meta.secret_key`` (see :func:`paperwire.settings.stored_secret_key`)."""
    import os

    from paperwire.settings import secret_key_file
    from paperwire.store.dialect import is_url
    from paperwire.store.meta import get_meta, set_meta

    if is_url(src):
        key = get_meta(source, "secret_key")
    else:
        path = secret_key_file(Path(src))
        key = path.read_text(encoding="ascii").strip() if path.is_file() else None
    if not key:
        return
    if is_url(dst):
        if get_meta(target, "secret_key") != key:
            set_meta(target, "secret_key", key)
        click.echo("secret key: carried into the store (meta.secret_key)", err=True)
        return
    path = secret_key_file(Path(dst))
    if path.exists():
        if path.read_text(encoding="ascii", errors="replace").strip() != key:
            click.echo(f"note: {path} holds another secret key than the source's: sessions and links in "
                       "mails already sent need the source's (PAPERWIRE_SECRET_KEY)", err=True)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    click.echo(f"secret key: carried into {path}", err=True)


COMMANDS = [db]
