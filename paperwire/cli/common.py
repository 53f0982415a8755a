"""What every command shares: settings, the database connection, JSON output."""

from __future__ import annotations

import json
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

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._db)
        return self._settings

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            from paperwire.store.db import connect

            self._conn = connect(self.settings.db_path)
        return self._conn


pass_ctx = click.make_pass_decorator(CliContext)


def echo_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(message: str, code: int = 1):
    """Print ``Error: message`` on stderr and exit: errors for people, not tracebacks."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)
