"""``paperwire digest ...`` (subscribe, confirm, unsubscribe, list, preview, send) and ``paperwire worker``."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import click

from paperwire.cli.common import echo_json, fail, pass_ctx


def _need_secret(settings) -> None:
    # Links in mails are signed with the secret key: a key made up for this process
    # alone would make every link dead in the web app. A key kept beside the SQLite file
    # or in the PostgreSQL store is the web app's own.
    if os.environ.get("PAPERWIRE_SECRET_KEY"):
        return
    if settings.secret_key_source == "process":
        fail("set PAPERWIRE_SECRET_KEY (the same value as the web app) so links in mails work")


def _parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--now: not an ISO date/time: {value!r}")
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@click.group("digest")
def digest() -> None:
    """Email digests: subscriptions, previews, sending."""


@digest.command("subscribe")
@click.argument("email")
@click.option("--frequency", type=click.Choice(["daily", "weekly"]), default="daily", show_default=True)
@click.option("--top", "top_n", type=int, default=10, show_default=True, help="Trending papers per digest (0 = none).")
@click.option("--personal/--no-personal", default=False,
              help="Picks similar to papers this address's account upvoted or saved.")
@click.option("--author", "authors", multiple=True, help="Follow an author (repeatable).")
@click.option("--category", "categories", multiple=True, help="Follow a category, e.g. cs.CL (repeatable).")
@click.option("--query", "queries", multiple=True, help="A saved search (repeatable).")
@click.option("--confirmed", is_flag=True,
              help="Skip double opt-in (only when you already have the owner's consent).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def subscribe_cmd(ctx, email, frequency, top_n, personal, authors, categories, queries, confirmed, as_json):
    """Subscribe EMAIL; a confirmation mail is sent unless --confirmed."""
    from paperwire.digest.send import DigestBusy, SmtpConfigError, deliver_confirmations
    from paperwire.digest.subscriptions import Preferences, SubscriptionError, public_view, subscribe

    _need_secret(ctx.settings)
    prefs = Preferences(frequency, top_n, personal, list(authors), list(categories), list(queries))
    try:
        res = subscribe(ctx.conn, ctx.settings, email, prefs, source="cli", confirmed=confirmed)
    except SubscriptionError as exc:
        fail(str(exc))
    delivery = ""
    if res.send_id is not None:
        try:
            r = deliver_confirmations(ctx.conn, ctx.settings)
            delivery = "sent" if r.sent else (r.failed[0]["error"] if r.failed else "queued (will retry)")
        except (DigestBusy, SmtpConfigError) as exc:
            delivery = f"queued ({exc})"
    if as_json:
        echo_json({"action": res.action, "delivery": delivery, "subscription": public_view(res.subscription)})
        return
    messages = {
        "confirmed": f"{res.subscription['email']}: subscribed ({res.subscription['frequency']}), no confirmation needed",
        "confirmation_queued": f"{res.subscription['email']}: confirmation mail {delivery}",
        "notice_queued": f"{res.subscription['email']} is already subscribed; mailed a manage link ({delivery})",
        "recently_mailed": f"{res.subscription['email']}: a mail went out in the last 10 minutes; nothing sent",
    }
    click.echo(messages[res.action])


@digest.command("confirm")
@click.argument("token")
@pass_ctx
def confirm_cmd(ctx, token):
    """Confirm a subscription with the token from its confirmation link."""
    from paperwire.digest.subscriptions import confirm
    from paperwire.digest.tokens import TokenError

    _need_secret(ctx.settings)
    token = token.split("token=", 1)[-1]  # accept the whole link too
    try:
        sub = confirm(ctx.conn, ctx.settings, token)
    except TokenError as exc:
        fail(str(exc))
    click.echo(f"{sub['email']}: confirmed ({sub['frequency']} digest)")


@digest.command("unsubscribe")
@click.argument("email", required=False)
@click.option("--token", help="The token from a mail's unsubscribe/manage link.")
@click.option("--mail", "mail_file", type=click.File("rb"),
              help="A mail sent to the List-Unsubscribe mailto: address ('-' = stdin; for an MTA pipe alias).")
@pass_ctx
def unsubscribe_cmd(ctx, email, token, mail_file):
    """Cancel a subscription by EMAIL, by --token, or from a received unsubscribe --mail."""
    from paperwire.digest.subscriptions import SubscriptionError, unsubscribe, unsubscribe_from_mail
    from paperwire.digest.tokens import TokenError

    if sum(bool(x) for x in (email, token, mail_file)) != 1:
        fail("give exactly one of EMAIL, --token or --mail")
    if token or mail_file:
        _need_secret(ctx.settings)  # tokens are checked against the site's secret key
    try:
        if mail_file:
            sub = unsubscribe_from_mail(ctx.conn, ctx.settings, mail_file.read())
        else:
            sub = unsubscribe(ctx.conn, ctx.settings, token=token, email=email)
    except (SubscriptionError, TokenError) as exc:
        fail(str(exc))
    click.echo(f"{sub['email']}: unsubscribed")


@digest.command("list")
@click.option("--status", type=click.Choice(["pending", "active", "unsubscribed", "bounced"]))
@click.option("--problems", is_flag=True, help="List failed, in-doubt and retrying mails instead.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(ctx, status, problems, as_json):
    """Subscriptions and the send ledger's counts."""
    from paperwire.digest.subscriptions import public_view
    from paperwire.store import digest as sql

    if problems:
        rows = sql.problem_sends(ctx.conn)
        if as_json:
            echo_json(rows)
            return
        for r in rows:
            click.echo(f"{r['recipient']:<32} {r['period']:<22} {r['state']:<9} tries {r['attempts']}  "
                       f"{r['last_error'] or ''}")
        click.echo(f"{len(rows)} mails need a look" if rows else "no failed, in-doubt or retrying mails")
        return
    subs = [public_view(s) for s in sql.list_subscriptions(ctx.conn, status)]
    counts = sql.send_counts(ctx.conn)
    if as_json:
        echo_json({"subscriptions": subs, "ledger": counts})
        return
    for s in subs:
        what = []
        if s["top_n"]:
            what.append(f"top {s['top_n']}")
        if s["personal"]:
            what.append("picks")
        what += [f"author:{a}" for a in s["authors"]] + [f"cat:{c}" for c in s["categories"]]
        what += [f"search:{q}" for q in s["queries"]]
        click.echo(f"{s['email']:<32} {s['status']:<12} {s['frequency']:<7} {', '.join(what)}")
    click.echo(f"{len(subs)} subscriptions; ledger: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))


@digest.command("preview")
@click.argument("email")
@click.option("--frequency", type=click.Choice(["daily", "weekly"]), help="Preview as another frequency.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Save to a file: .eml (the whole message), .html or .txt (one part).")
@click.option("--now", "now_s", help="Pretend it is this ISO date/time (UTC unless given).")
@pass_ctx
def preview_cmd(ctx, email, frequency, output, now_s):
    """Show what EMAIL would get now. Records nothing and sends nothing.

    An address with no subscription gets the default digest (trending top 10)."""
    from paperwire.digest.send import DEFAULT_TOP_N, preview
    from paperwire.digest.subscriptions import SubscriptionError
    from paperwire.store import digest as sql

    try:
        digest_, _, data = preview(ctx.conn, ctx.settings, email, frequency=frequency, now=_parse_now(now_s))
    except SubscriptionError as exc:
        fail(str(exc))
    if digest_.subscription.get("is_default"):
        as_of = digest_.subscription.get("as_of")
        click.echo(f"{email} has no subscription: this is the default digest "
                   f"({digest_.subscription['frequency']}, trending top {DEFAULT_TOP_N})"
                   + (f", as of {as_of}, the newest papers' date (nothing is newer than that)" if as_of else ""),
                   err=True)
    if data is None:
        newest = sql.latest_feed_date(ctx.conn)
        hint = f" (the newest papers are from {newest}: try --now {newest})" if newest else " (the store has no papers)"
        click.echo(f"{email}: nothing new for {digest_.period}: no digest would be sent{hint}", err=True)
        sys.exit(0)
    msg = message_from_bytes(data, policy=default_policy)
    if output:
        path = Path(output)
        if path.suffix.lower() in (".html", ".htm"):
            from paperwire.digest.render import html_with_inline_images

            path.write_text(html_with_inline_images(msg), encoding="utf-8")
        elif path.suffix.lower() == ".txt":
            path.write_text(msg.get_body(("plain",)).get_content(), encoding="utf-8")
        else:
            path.write_bytes(data)
        click.echo(f"wrote {path} ({len(digest_.paper_rowids)} papers)", err=True)
        return
    for h in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"):
        click.echo(f"{h}: {msg[h]}")
    click.echo()
    click.echo(msg.get_body(("plain",)).get_content())


@digest.command("send")
@click.option("--frequency", type=click.Choice(["daily", "weekly", "all"]), default="all", show_default=True)
@click.option("--now", "now_s", help="Send for the period of this ISO date/time (default: now).")
@click.option("--no-wait", is_flag=True, help="Do not wait for retries; leave them to the next run.")
@click.option("--resend-in-doubt", is_flag=True,
              help="Also resend mails whose delivery is unknown (connection lost after the final '.').")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def send_cmd(ctx, frequency, now_s, no_wait, resend_in_doubt, as_json):
    """Compose and send this period's digests (safe to rerun: once per subscriber per period).

    Exit status: 0 all delivered, 1 some failed / deferred / in doubt, 2 another run is busy.
    """
    from paperwire.digest.send import DigestBusy, SmtpConfigError, deliver_confirmations, run_digests

    _need_secret(ctx.settings)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    now = _parse_now(now_s)
    reports = []
    try:
        for freq in (("daily", "weekly") if frequency == "all" else (frequency,)):
            reports.append(run_digests(ctx.conn, ctx.settings, freq, now=now, wait_for_retries=not no_wait,
                                       resend_in_doubt=resend_in_doubt))
        try:
            confirm_report = deliver_confirmations(ctx.conn, ctx.settings, lock_timeout=0)
        except DigestBusy:
            confirm_report = None
    except DigestBusy as exc:
        fail(str(exc), code=2)
    except SmtpConfigError as exc:
        fail(str(exc))
    if as_json:
        echo_json({"runs": [r.to_dict() for r in reports],
                   "confirmations": confirm_report.to_dict() if confirm_report else None})
    else:
        for r in reports:
            click.echo(r.summary())
            for f in r.failed:
                click.echo(f"  failed: {f['recipient']}: {f['error']}", err=True)
            for n in dict.fromkeys(r.notes):
                click.echo(f"  note: {n}", err=True)
    from paperwire.store import digest as sql

    doubt = sql.send_counts(ctx.conn).get("in_doubt", 0)
    if doubt and not as_json:
        click.echo(f"note: {doubt} mail(s) in the ledger are in doubt (connection lost after the final '.'); "
                   "they were probably delivered and are not resent unless you pass --resend-in-doubt", err=True)
    if not all(r.ok for r in reports):
        sys.exit(1)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one scheduler pass and exit.")
@click.option("--interval", type=float, default=60.0, show_default=True, help="Seconds between passes.")
@click.option("--now", "now_s", help="Pretend it is this ISO date/time (testing).")
@pass_ctx
def worker_cmd(ctx, once, interval, now_s):
    """Run the scheduler: digests at PAPERWIRE_DIGEST_HOUR, the harvest sync at PAPERWIRE_SYNC_HOUR."""
    from paperwire.worker import run_worker

    _need_secret(ctx.settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    now = _parse_now(now_s)
    run_worker(ctx.settings, once=once, interval=interval, now_fn=(lambda: now) if now else None)


COMMANDS: list = [digest, worker_cmd]
