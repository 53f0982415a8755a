"""Reply notification mail: composed into ``notify_mail`` in the same transaction as
the reply, delivered later over the site's mailer (SMTP or the demo outbox).

Delivery follows the digest ledger's protocol (:mod:`paperwire.digest.send`): a row
is marked ``sending`` (attempt counted), committed ``in_doubt`` just before the final
``.``, then ``sent``; a connection lost after the ``.`` leaves it ``in_doubt`` and it
is not resent, so a mail goes out at most once, and exactly once unless the link
dropped in that window. Opt-out is per account (``notify_prefs.email_replies``); every
mail carries a one-click unsubscribe link (RFC 8058) signed with ``secret_key`` and
bound to the account's nonce.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from urllib.parse import quote

from itsdangerous import BadData, URLSafeSerializer

from paperwire import latex
from paperwire.digest import outbox
from paperwire.digest.render import new_message_id
from paperwire.digest.smtp import (DigestBusy, SmtpConfigError, SmtpSession, _InDoubt, _Permanent, _Transient,
                                   backoff_seconds, delivery_lock)
from paperwire.discuss import markdown
from paperwire.model import utcnow_iso
from paperwire.settings import Settings
from paperwire.store import accounts
from paperwire.store import discuss as sql
from paperwire.store.db import transaction

log = logging.getLogger(__name__)
_SALT = "paperwire.discuss.unsubscribe"
LOCK_KIND = "discuss"


class TokenError(ValueError):
    """An unsubscribe link that is malformed, forged or revoked."""


def prefs(conn: sqlite3.Connection, user_id: int) -> dict:
    """The account's notification preferences (created on first use: mail on)."""
    from paperwire.discuss.comments import new_nonce

    return sql.get_prefs(conn, user_id) or sql.ensure_prefs(conn, user_id, new_nonce(), utcnow_iso())


def set_email_replies(conn: sqlite3.Connection, user_id: int, on: bool) -> None:
    with transaction(conn):
        prefs(conn, user_id)
        sql.set_email_replies(conn, user_id, on, utcnow_iso())


def unsubscribe_token(settings: Settings, user_id: int, nonce: str) -> str:
    return URLSafeSerializer(settings.secret_key, salt=_SALT).dumps([int(user_id), nonce])


def unsubscribe_url(settings: Settings, user_id: int, nonce: str) -> str:
    return (f"{settings.base_url.rstrip('/')}/notifications/unsubscribe?token="
            f"{quote(unsubscribe_token(settings, user_id, nonce))}")


def read_token(conn: sqlite3.Connection, settings: Settings, token: str) -> int:
    """The account an unsubscribe token names, or :class:`TokenError`."""
    try:
        value = URLSafeSerializer(settings.secret_key, salt=_SALT).loads(token or "")
    except BadData:
        raise TokenError("this link is not valid (it may be incomplete or for another site)") from None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        raise TokenError("this link is not valid")
    p = sql.get_prefs(conn, value[0])
    if p is None or p["nonce"] != value[1]:
        raise TokenError("this link is no longer valid")
    return value[0]


def compose(conn: sqlite3.Connection, settings: Settings, notification_id: int, recipient_id: int,
            comment: dict) -> int | None:
    """Queue the mail for one reply notification (inside the caller's transaction);
    None when the recipient opted out or has no address."""
    user = accounts.get_user(conn, recipient_id)
    if not user or not user.get("email"):
        return None
    p = prefs(conn, recipient_id)
    if not p["email_replies"]:
        return None
    base = settings.base_url.rstrip("/")
    title = latex.to_text(comment.get("paper_title") or "")
    link = f"{base}/papers/{quote(comment['paper_public'], safe='/')}#c{comment['id']}"
    unsub = unsubscribe_url(settings, recipient_id, p["nonce"])
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = user["email"]
    msg["Subject"] = f"{comment['author']} replied on \u201c{markdown.plain(title, 80)}\u201d"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = new_message_id(settings, f"reply.{comment['id']}.{recipient_id}")
    msg["List-Unsubscribe"] = f"<{unsub}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"{comment['author']} replied in the discussion of\n{title}\n\n"
        f"{markdown.plain(comment['raw'], 1000)}\n\n"
        f"Read and answer: {link}\n\n"
        f"You get this mail because you take part in this discussion.\n"
        f"Stop reply e-mails (one click): {unsub}\n")
    return sql.queue_mail(conn, notification=notification_id, user_id=recipient_id, recipient=user["email"],
                          message_id=str(msg["Message-ID"]), message=msg.as_bytes(policy=SMTP),  # CRLF lines, as SMTP wants
                          now=utcnow_iso())


def _iso_in(seconds: float) -> str:
    at = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return (at.replace(microsecond=0) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver_pending(conn: sqlite3.Connection, settings: Settings, *, lock_timeout: float = 5.0) -> dict:
    """Deliver due notification mail; returns counts. Transient failures are retried
    by later calls (the worker's tick) with backoff; 5xx and exhausted retries fail."""
    counts = {"sent": 0, "retry": 0, "failed": 0, "in_doubt": 0}
    try:
        with delivery_lock(settings, LOCK_KIND, lock_timeout):
            session = (outbox.OutboxSession(settings, conn, echo=lambda line: log.info(line))
                       if outbox.uses_outbox(settings) else SmtpSession(settings))
            sender = parseaddr(settings.mail_from)[1]
            try:
                for row in sql.due_mail(conn, utcnow_iso()):
                    counts[_deliver_one(conn, settings, session, sender, row)] += 1
            finally:
                session.close()
    except (DigestBusy, SmtpConfigError) as exc:
        log.warning("reply mail left queued: %s", exc)
        counts["error"] = str(exc)
    return counts


def _deliver_one(conn, settings: Settings, session, sender: str, row: dict) -> str:
    with transaction(conn):
        sql.mark_mail(conn, row["id"], "sending", utcnow_iso(), bump_attempts=True)
    attempts = row["attempts"] + 1

    def before_dot() -> None:
        with transaction(conn):
            sql.mark_mail(conn, row["id"], "in_doubt", utcnow_iso())

    try:
        session.transact(sender, row["recipient"], bytes(row["message"]), before_dot=before_dot,
                         crash=lambda point: None)
    except _Transient as exc:
        final = attempts >= settings.mail_max_attempts
        with transaction(conn):
            sql.mark_mail(conn, row["id"], "failed" if final else "pending", utcnow_iso(), error=str(exc),
                          next_attempt_at=None if final else _iso_in(backoff_seconds(settings, attempts)))
        return "failed" if final else "retry"
    except _Permanent as exc:
        with transaction(conn):
            sql.mark_mail(conn, row["id"], "failed", utcnow_iso(), error=str(exc))
        return "failed"
    except _InDoubt as exc:
        with transaction(conn):
            sql.mark_mail(conn, row["id"], "in_doubt", utcnow_iso(), error=str(exc))
        return "in_doubt"
    with transaction(conn):
        sql.mark_mail(conn, row["id"], "sent", utcnow_iso(), sent=True)
    return "sent"
