"""``paperwire token create|list|revoke``: personal API tokens (paperwire.accounts.tokens)."""

from __future__ import annotations

import json

import click

from paperwire.cli.common import echo_json, fail, pass_ctx


def _user(ctx, name: str) -> dict:
    from paperwire.store import accounts

    user = accounts.find_user(ctx.conn, name)
    if user is None:
        fail(f"no user {name!r} (create one with: paperwire user create NAME --email ...)")
    return user


@click.group("token")
def token() -> None:
    """Personal API tokens, sent as ``Authorization: Bearer TOKEN``."""


@token.command("create")
@click.option("--user", "username", required=True, help="The account (username or e-mail).")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
@click.option("--name", default="", help="A label to tell tokens apart.")
@click.option("--json", "as_json", is_flag=True, help='Print {"token": "..."} only.')
@pass_ctx
def create_cmd(ctx, username, scope, name, as_json):
    """Create a token. It is printed once; only its hash is stored."""
    from paperwire.accounts import tokens

    made = tokens.create_token(ctx.conn, _user(ctx, username)["id"], scope, name)
    if as_json:
        click.echo(json.dumps({"token": made["token"]}))  # the contract: exactly this one line
    else:
        click.echo(made["token"])
        click.echo(f"({scope} token {made['id']} for {username}; it is not shown again)", err=True)


@token.command("list")
@click.option("--user", "username", required=True, help="The account (username or e-mail).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(ctx, username, as_json):
    """The account's tokens (never the secret itself)."""
    from paperwire.accounts import tokens

    rows = tokens.list_tokens(ctx.conn, _user(ctx, username)["id"])
    if as_json:
        echo_json(rows)
        return
    for t in rows:
        state = f"revoked {t['revoked_at']}" if t["revoked_at"] else f"last used {t['last_used'] or 'never'}"
        click.echo(f"{t['id']}\t{t['scope']}\t{t['prefix']}…\t{t['name'] or '-'}\t{state}")


@token.command("revoke")
@click.option("--user", "username", required=True, help="The account (username or e-mail).")
@click.argument("token_id", type=int)
@pass_ctx
def revoke_cmd(ctx, username, token_id):
    """Revoke a token by its id (from ``token list``): refused from the next request on."""
    from paperwire.accounts import tokens

    try:
        tokens.revoke_token(ctx.conn, _user(ctx, username)["id"], token_id)
    except tokens.TokenError as exc:
        fail(str(exc))
    click.echo(f"revoked token {token_id}")


COMMANDS = [token]
