"""Signed account links and the mail that carries them.

Three purposes, each with its own itsdangerous salt and a time limit:

* ``verify``: confirms the address an account signed up with. Bound to that address,
  so it stops working once the address changes.
* ``reset``: sets a new password. Bound to a fingerprint of the current password hash,
  so it works once: the reset changes the hash and every earlier link dies with it (as
  does a link issued before any other password change).
* ``email``: confirms a new address. Bound to the new address and a fingerprint of the
  current one, so it works once too.

The mail goes out at once over the site's mailer (SMTP, or the demo's outbox); a mail
server that is down gives :class:`MailError` with a message for people, never a crash.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from urllib.parse import quote

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from paperwire.digest import outbox
from paperwire.digest.render import new_message_id
from paperwire.settings import Settings

log = logging.getLogger(__name__)

MAX_AGE = {"verify": 7 * 86400, "reset": 3600, "email": 86400}
_SALTS = {p: f"paperwire.accounts.{p}" for p in MAX_AGE}
PATHS = {"verify": "/verify-email", "reset": "/password/reset", "email": "/settings/email/confirm"}


class LinkError(ValueError):
    """A link that is malformed, forged, expired or already used; the message is for people."""


class MailError(RuntimeError):
    """The mail could not be sent now; the message is for people."""


def fingerprint(value: str | None) -> str:
    """A short digest that changes when ``value`` does (the hash itself never leaves the DB)."""
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


def make_token(settings: Settings, purpose: str, user_id: int, bound: str) -> str:
    """A URL-safe, timed token naming ``user_id`` for ``purpose``, bound to ``bound``."""
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALTS[purpose]).dumps([int(user_id), bound])


def read_token(settings: Settings, purpose: str, token: str) -> tuple[int, str]:
    """``(user_id, bound)`` from a token, or :class:`LinkError`."""
    if not token or len(token) > 1000:
        raise LinkError("this link is not valid (it may be incomplete)")
    try:
        value = URLSafeTimedSerializer(settings.secret_key, salt=_SALTS[purpose]).loads(
            token, max_age=MAX_AGE[purpose])
    except SignatureExpired:
        raise LinkError("this link has expired; ask for a new one") from None
    except BadData:
        raise LinkError("this link is not valid (it may be incomplete or for another site)") from None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        raise LinkError("this link is not valid")
    return value[0], value[1]


def link(settings: Settings, purpose: str, token: str) -> str:
    """The absolute URL of a link."""
    return f"{settings.base_url.rstrip('/')}{PATHS[purpose]}?token={quote(token)}"


_TEXTS = {
    "verify": ("Confirm your e-mail address on paperwire",
               "Hello {name},\n\nplease confirm that this is your address by opening this link:\n\n{url}\n\n"
               "The link works for 7 days. If you did not sign up on paperwire, ignore this mail.\n"),
    "reset": ("Reset your paperwire password",
              "Hello {name},\n\nsomeone (hopefully you) asked to reset the password of your paperwire account.\n"
              "Choose a new password here:\n\n{url}\n\n"
              "The link works once, for one hour. If you did not ask, ignore this mail: your password stays.\n"),
    "email": ("Confirm your new e-mail address on paperwire",
              "Hello {name},\n\nyou asked to change the address of your paperwire account to this one.\n"
              "Confirm it by opening this link:\n\n{url}\n\nThe link works once, for one day.\n"),
}


def compose(settings: Settings, purpose: str, username: str, recipient: str, url: str) -> bytes:
    """The message for one account link (plain text, CRLF lines)."""
    subject, body = _TEXTS[purpose]
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = new_message_id(settings, f"account.{purpose}")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body.format(name=username, url=url))
    return msg.as_bytes(policy=SMTP)


def send(conn: sqlite3.Connection, settings: Settings, recipient: str, data: bytes) -> None:
    """Hand one message to the site's mailer now; :class:`MailError` when it cannot."""
    from paperwire.digest.smtp import SmtpSession

    session = (outbox.OutboxSession(settings, conn, echo=lambda line: log.info(line))
               if outbox.uses_outbox(settings) else SmtpSession(settings))
    try:
        session.transact(parseaddr(settings.mail_from)[1], recipient, data,
                         before_dot=lambda: None, crash=lambda _where: None)
    except Exception as exc:  # noqa: BLE001 - SMTP errors of every kind become one message for people
        log.warning("account mail to %s not sent: %s", recipient, exc)
        raise MailError("We could not send the mail just now. Please try again in a few minutes.") from None
    finally:
        try:
            session.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


def send_link(conn: sqlite3.Connection, settings: Settings, purpose: str, user: dict, recipient: str,
              bound: str) -> str:
    """Make, mail and return the link of ``purpose`` for ``user`` (sent to ``recipient``)."""
    url = link(settings, purpose, make_token(settings, purpose, user["id"], bound))
    send(conn, settings, recipient, compose(settings, purpose, user["username"], recipient, url))
    return url
