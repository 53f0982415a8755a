"""The ``paperwire`` command: a thin adapter over the library.

Each area keeps its commands in its own module (``core``, ``search``, ``web``,
``digest``, ``harvest``); every module exposes ``COMMANDS``, a list of click
commands added to the group here.
"""

from __future__ import annotations

import click

from paperwire import __version__
from paperwire.cli import core, digest, harvest, search, web
from paperwire.cli import library as library_cli
from paperwire.cli import recommend as recommend_cli
from paperwire.cli import topics as topics_cli
from paperwire.cli import tokens as tokens_cli
from paperwire.cli import db as db_cli
from paperwire.cli.common import CliContext, add_db_option, fail


class _PaperwireGroup(click.Group):
    """The top group: a store that cannot be reached is one line on stderr, never a traceback,
    whichever command found out first (settings read the shared secret key from the store,
    ``serve`` and ``worker`` open it before their loops, a command may lose it midway)."""

    def invoke(self, ctx: click.Context):
        from paperwire.store.dialect import TextRefused
        from paperwire.store.health import store_down_reason

        try:
            return super().invoke(ctx)
        except TextRefused as exc:  # a NUL byte in an argument, on PostgreSQL
            fail(str(exc))
        except Exception as exc:
            reason = store_down_reason(exc)  # the one test of "unreachable or busy" (also the web's 503)
            if reason is None:
                raise
            fail(reason)


@click.group(cls=_PaperwireGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=False), envvar="PAPERWIRE_DB",
              help="SQLite database file or postgresql:// URL [default: $PAPERWIRE_DB, else the user data dir].")
@click.version_option(__version__, prog_name="paperwire")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """paperwire: research papers: feed, trending, search, similar papers, digests."""
    ctx.obj = CliContext(db)
    ctx.call_on_close(ctx.obj.close)


for module in (core, search, web, digest, harvest, library_cli, recommend_cli, topics_cli, tokens_cli, db_cli):
    for command in module.COMMANDS:
        add_db_option(command)
        cli.add_command(command)


def main() -> None:
    cli(prog_name="paperwire")
