"""The local outbox: a mailer backend that keeps mail in the database instead of
handing it to an SMTP server, and the helpers that show that mail on the site.

``paperwire demo`` uses it when no SMTP server is configured, so a newcomer can
finish double opt-in without a mail server: the confirmation mail is kept in
``mail_outbox``, shown at ``/outbox`` and its confirm link is printed on the
console. Elsewhere it is chosen with ``PAPERWIRE_MAIL_TRANSPORT=outbox``.

It plugs into :func:`paperwire.digest.send.deliver_due` in place of
:class:`~paperwire.digest.smtp.SmtpSession` and keeps the ledger protocol: the
row is committed ``in_doubt`` before the mail is written, ``sent`` after, and a
mail is kept once per Message-ID, so the exactly-once argument of :mod:`.send`
holds unchanged (a crash between the two commits leaves a kept mail ``in_doubt``,
which is never re-kept twice even with ``--resend-in-doubt``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Callable

from markupsafe import Markup, escape

from paperwire.digest.periods import utc_iso
from paperwire.settings import Settings
from paperwire.store import outbox as sql
from paperwire.store.db import transaction

TRANSPORTS = ("smtp", "outbox")
_URL = re.compile(r"https?://[^\s<>\"']+")
_SMTP_ENV = ("PAPERWIRE_SMTP_HOST", "PAPERWIRE_SMTP_PORT", "PAPERWIRE_SMTP_USER")


def smtp_configured(settings: Settings) -> bool:
    """Whether an SMTP server was set up: a ``PAPERWIRE_SMTP_*`` variable or non-default settings."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    if any(os.environ.get(name) for name in _SMTP_ENV):
        return True
    return (settings.smtp_host != defaults["smtp_host"] or settings.smtp_port != defaults["smtp_port"]
            or bool(settings.smtp_user))


def demo_settings(settings: Settings, *, announce: bool = True) -> Settings:
    """The demo's settings: the outbox transport unless an SMTP server or a transport was chosen."""
    if os.environ.get("PAPERWIRE_MAIL_TRANSPORT") or settings.mail_transport != "smtp" or smtp_configured(settings):
        return settings
    if announce:
        print(f"mail: no SMTP server is configured, so mail is kept in the outbox at "
              f"{settings.base_url.rstrip('/')}/outbox (confirm links are printed here too)", flush=True)
    return dataclasses.replace(settings, mail_transport="outbox")


def uses_outbox(settings: Settings) -> bool:
    """Whether mail goes to the local outbox instead of SMTP."""
    return settings.mail_transport == "outbox"


def outbox_url(settings: Settings, mail_id: int | None = None) -> str:
    """The outbox page, or one kept mail's page, on this site."""
    base = settings.base_url.rstrip("/") + "/outbox"
    return base if mail_id is None else f"{base}/{mail_id}"


class OutboxSession:
    """Same interface as :class:`~paperwire.digest.smtp.SmtpSession`; keeps each mail in ``mail_outbox``.

    ``echo`` gets one line per kept mail (and one per confirm link in it); the
    default prints to stdout, which is the ``paperwire demo`` console.
    """

    def __init__(self, settings: Settings, conn: sqlite3.Connection,
                 echo: Callable[[str], None] | None = None):
        self.settings, self.conn = settings, conn
        self.echo = echo or (lambda line: print(line, file=sys.stdout, flush=True))

    def ensure(self) -> None:
        """Nothing to connect to."""

    def reset(self) -> None:
        """Nothing to drop."""

    def close(self) -> None:
        """Nothing to close."""

    def transact(self, sender: str, rcpt: str, data: bytes, *, before_dot: Callable[[], None],
                 crash: Callable[[str], None]) -> None:
        """Keep the message: the ledger row is ``in_doubt`` (committed by ``before_dot``) first."""
        msg = message_from_bytes(data, policy=default_policy)
        before_dot()
        with transaction(self.conn):
            mail_id = sql.add_mail(self.conn, message_id=str(msg["Message-ID"] or ""), sender=sender,
                                   recipient=rcpt, subject=str(msg["Subject"] or ""), message=data,
                                   now=utc_iso())
        crash("dot")
        self.echo(f"outbox: mail to {rcpt} ({msg['Subject']}): {outbox_url(self.settings, mail_id)}")
        for link in confirm_links(self.settings, text_part(data)):
            self.echo(f"outbox:   confirm link for {rcpt}: {link}")


# ---------------------------------------------------------------- reading kept mail

def text_part(data: bytes) -> str:
    """The plain-text body of a message ('' when it has none)."""
    msg = message_from_bytes(data, policy=default_policy)
    body = msg.get_body(("plain",))
    return body.get_content() if body is not None else ""


def confirm_links(settings: Settings, text: str) -> list[str]:
    """Double opt-in links of this site in a mail's text."""
    prefix = settings.base_url.rstrip("/") + "/digest/confirm?"
    return list(dict.fromkeys(u for u in _URL.findall(text) if u.startswith(prefix)))


def own_link(settings: Settings, url: str) -> bool:
    """Links to this site (the only ones the outbox page makes clickable)."""
    base = settings.base_url.rstrip("/")
    return url == base or url.startswith(base + "/")


def linkify(settings: Settings, text: str) -> Markup:
    """HTML of ``text``: everything escaped; only this site's own links become ``<a>``."""
    out, pos = [], 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(".,;:)")
        end = m.start() + len(url)
        out.append(escape(text[pos:m.start()]))
        if own_link(settings, url):
            out.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        else:
            out.append(escape(url))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def mail_view(settings: Settings, row: dict) -> dict:
    """A kept mail for the page: headers as text, the body as safe HTML."""
    data = bytes(row["message"])
    msg = message_from_bytes(data, policy=default_policy)
    return {
        "id": row["id"], "created_at": row["created_at"], "recipient": row["recipient"],
        "headers": [(h, str(msg[h])) for h in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe")
                    if msg[h] is not None],
        "body_html": linkify(settings, text_part(data)),
        "confirm_links": confirm_links(settings, text_part(data)),
    }
