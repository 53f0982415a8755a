"""What every command shares: settings, the database connection, JSON output."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys

import click

from paperwire.settings import Settings, load_settings


class CliContext:
    """Lazily opened settings and database for one invocation."""

    def __init__(self, db: str | None):
        self._db = db
        self._settings: Settings | None = None
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        """Close the store connection, if one was opened (a pooled PostgreSQL connection goes
        back to its pool at once, not whenever the garbage collector gets to it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def use_db(self, db: str) -> None:
        """Point this invocation at ``db`` (``--db`` given after the command name)."""
        if self._conn is not None:
            raise click.UsageError("--db came too late: the database is already open")
        self._db, self._settings = db, None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._db)
        return self._settings

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            from paperwire.store.db import StoreUnavailable, connect

            try:
                self._conn = connect(self.settings.db_path)
            except StoreUnavailable as exc:
                fail(str(exc))
        return self._conn


pass_ctx = click.make_pass_decorator(CliContext)


def echo_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(message: str, code: int = 1):
    """Print ``Error: message`` on stderr and exit: errors for people, not tracebacks."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _late_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliContext).use_db(value)


def add_db_option(command: click.Command) -> None:
    """Let ``--db FILE`` follow the command name too (``paperwire stats --db x.db``), for
    the command and, in a group, each of its subcommands; it overrides one given before."""
    if any("--db" in getattr(p, "opts", ()) for p in command.params):
        return
    command.params.append(click.Option(
        ["--db"], type=click.Path(dir_okay=False), expose_value=False, is_eager=True, callback=_late_db,
        help="SQLite database file (may also come before the command)."))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_db_option(sub)


def terminal_width(default: int = 100) -> int:
    """Columns of the terminal (``$COLUMNS`` or ``default`` when output is not one)."""
    return shutil.get_terminal_size((default, 24)).columns


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters at a word boundary, with an ellipsis when cut."""
    text = " ".join((text or "").split())
    if len(text) <= width:
        return text
    width = max(width, 8)
    cut = text[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:  # a word boundary not too far back; else cut the long word
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—(") + "…"


def clip_line(prefix: str, title: str, suffix: str = "", *, width: int | None = None) -> str:
    """``prefix + title + suffix`` with the title clipped so the line fits the terminal."""
    room = (width or terminal_width()) - len(prefix) - len(suffix)
    return f"{prefix}{clip(title, max(room, 20))}{suffix}"
