"""``paperwire`` commands for the web area: ``serve`` and ``user`` (accounts, admins)."""

from __future__ import annotations

import click

from paperwire.cli.common import echo_json, fail, pass_ctx


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (one per CPU core is a good start).")
@click.option("--no-cache", is_flag=True, help="Render every page afresh (for measuring).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@pass_ctx
def serve(ctx, host, port, workers, no_cache, log_level):
    """Serve the site and the JSON API."""
    from paperwire.settings import secret_key_note
    from paperwire.web.server import PortInUse, check_port, run_server

    from paperwire.web.guard import parse_networks

    from paperwire.web.metrics import MetricsAccess

    try:
        parse_networks(ctx.settings.trusted_proxies)
        MetricsAccess.from_env()  # PAPERWIRE_METRICS_ALLOW, checked as early
    except ValueError as exc:  # PAPERWIRE_TRUSTED_PROXIES: one line, not a traceback
        fail(str(exc))
    try:
        check_port(host, port)  # first: a busy port is one line, before anything else is said or done
        note = secret_key_note(ctx.settings)  # workers share the key: run_server passes it to them
        if note:
            click.echo(note, err=True)
        ctx.conn  # noqa: B018 - open (and migrate) the database before the workers start
        run_server(ctx.settings, host=host, port=port, workers=workers, cache=not no_cache, log_level=log_level)
    except PortInUse as exc:
        fail(str(exc))


@click.group()
def user():
    """Site accounts: create users, grant the admin role."""


@user.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.password_option(envvar="PAPERWIRE_NEW_PASSWORD")
@pass_ctx
def user_create(ctx, username, email, admin, password):
    """Create an account (the password is prompted for, or taken from $PAPERWIRE_NEW_PASSWORD)."""
    from paperwire.store import accounts
    from paperwire.web import security

    problem = security.validate_signup(username, email, password)
    if problem:
        fail(problem)
    try:
        uid = accounts.create_user(ctx.conn, username, email, security.hash_password(password), is_admin=admin)
    except accounts.AccountError as exc:
        fail(str(exc))
    click.echo(f"created user {username} (id {uid}{', admin' if admin else ''})")


@user.command("make-admin")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="Take the admin role away instead.")
@pass_ctx
def user_make_admin(ctx, username, revoke):
    """Grant (or --revoke) the admin role: admins can hide and unhide papers."""
    from paperwire.store import accounts

    if not accounts.set_admin(ctx.conn, username, not revoke):
        fail(f"no user {username!r}")
    click.echo(f"{username} is {'no longer ' if revoke else ''}an admin")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def user_list(ctx, as_json):
    """List accounts."""
    from paperwire.store import accounts

    users = accounts.list_users(ctx.conn)
    if as_json:
        echo_json(users)
        return
    for u in users:
        click.echo(f"{u['id']:>5}  {u['username']:<24} {u['email']:<32} {'admin' if u['is_admin'] else ''}")


COMMANDS: list = [serve, user]
