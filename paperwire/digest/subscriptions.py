"""Subscribing, double opt-in, changing and cancelling subscriptions.

Nothing but the confirmation mail goes to an address before its owner follows
the confirmation link (status ``pending`` -> ``active``). Every mail carries a
manage link and a one-click unsubscribe link (see :mod:`.tokens`), so changing
or cancelling never needs a login. Re-subscribing an address that is already
active changes nothing: it mails the owner a manage link instead, so a stranger
who types someone's address into the form can neither change their digest nor
flood them (one such mail per address per 10 minutes).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default as default_policy
from urllib.parse import quote

from paperwire.digest.periods import FREQUENCIES, utc_iso
from paperwire.digest.tokens import TokenError, make_token, read_token
from paperwire.model import normalize_title
from paperwire.settings import Settings
from paperwire.store import digest as sql
from paperwire.store.db import transaction

MAX_TOP_N = 50
MAX_FOLLOWS = 20
MAX_QUERY_CHARS = 250
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,30}$")


class SubscriptionError(ValueError):
    """Bad input or an unknown subscription: the message is for people."""


@dataclass
class Preferences:
    """What a subscriber gets and how often."""

    frequency: str = "daily"
    top_n: int = 10
    personal: bool = False
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def validated(self) -> "Preferences":
        """A cleaned copy, or :class:`SubscriptionError`."""
        if self.frequency not in FREQUENCIES:
            raise SubscriptionError("frequency must be daily or weekly")
        try:
            top_n = int(self.top_n)
        except (TypeError, ValueError):
            raise SubscriptionError("the number of trending papers must be a whole number") from None
        if not 0 <= top_n <= MAX_TOP_N:
            raise SubscriptionError(f"the number of trending papers must be between 0 and {MAX_TOP_N}")
        authors = _dedup(a for a in parse_list(self.authors) if normalize_title(a))
        categories = _dedup(parse_list(self.categories))
        for c in categories:
            if not _CATEGORY.match(c):
                raise SubscriptionError(f"not a category: {c!r} (e.g. cs.CL)")
        queries = _dedup(parse_list(self.queries, split_commas=False))
        for q in queries:
            if len(q) > MAX_QUERY_CHARS:
                raise SubscriptionError(f"saved searches are at most {MAX_QUERY_CHARS} characters")
        for name, values in (("authors", authors), ("categories", categories), ("saved searches", queries)):
            if len(values) > MAX_FOLLOWS:
                raise SubscriptionError(f"at most {MAX_FOLLOWS} {name}")
        p = Preferences(self.frequency, top_n, bool(self.personal), authors, categories, queries)
        if not (p.top_n or p.personal or p.authors or p.categories or p.queries):
            raise SubscriptionError("choose at least one thing to receive (trending papers, picks, "
                                    "authors, categories or searches)")
        return p

    @classmethod
    def of(cls, sub: dict) -> "Preferences":
        return cls(sub["frequency"], sub["top_n"], sub["personal"], list(sub["authors"]),
                   list(sub["categories"]), list(sub["queries"]))


@dataclass
class SubscribeResult:
    subscription: dict
    action: str  # confirmation_queued | notice_queued | recently_mailed | confirmed
    send_id: int | None = None


def parse_list(value, *, split_commas: bool = True) -> list[str]:
    """A list from form text (one per line, or comma separated) or an iterable."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = re.split(r"[\r\n]+" if not split_commas else r"[\r\n,;]+", value)
    else:
        parts = [str(v) for v in value]
    return [re.sub(r"\s+", " ", p).strip() for p in parts if p and p.strip()]


def _dedup(values) -> list[str]:
    out, seen = [], set()
    for v in values:
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


def normalize_email(email: str) -> str:
    """Trimmed address with a lower-case domain, or :class:`SubscriptionError`."""
    email = (email or "").strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise SubscriptionError("please enter a valid email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def _now(now: datetime | None) -> str:
    return utc_iso(now)


def links(settings: Settings, sub: dict) -> dict:
    """Manage page, one-click unsubscribe URL and mailto for one subscription."""
    token = make_token(settings.secret_key, "manage", sub["id"], sub["nonce"])
    base = settings.base_url.rstrip("/")
    address = unsubscribe_address(settings)
    return {
        "token": token,
        "manage_url": f"{base}/digest/manage?token={token}",
        "unsubscribe_url": f"{base}/digest/unsubscribe?token={token}",
        "unsubscribe_mailto": f"mailto:{address}?subject={quote('unsubscribe ' + token)}",
    }


def confirm_url(settings: Settings, sub: dict) -> str:
    token = make_token(settings.secret_key, "confirm", sub["id"], sub["nonce"])
    return f"{settings.base_url.rstrip('/')}/digest/confirm?token={token}"


def unsubscribe_address(settings: Settings) -> str:
    from email.utils import parseaddr

    return settings.mail_unsubscribe_address or parseaddr(settings.mail_from)[1] or "digest@localhost"


def subscribe(conn: sqlite3.Connection, settings: Settings, email: str, prefs: Preferences, *,
              source: str = "web", confirmed: bool = False, now: datetime | None = None) -> SubscribeResult:
    """Create or renew a subscription and queue its confirmation mail.

    ``confirmed=True`` (the CLI's ``--confirmed``, for an operator who has consent
    already) skips double opt-in. The queued mail is delivered by
    :func:`paperwire.digest.send.deliver_due` (called right after by the CLI and the
    web route, and by every ``digest send`` / worker tick for anything left over).
    """
    from paperwire.digest import render

    email = normalize_email(email)
    prefs = prefs.validated()
    ts = _now(now)
    with transaction(conn):
        sub = sql.get_subscription_by_email(conn, email)
        user_id = sql.user_id_for_email(conn, email)
        if sub is not None and sub["status"] == "active":
            if confirmed:  # the operator changes an active subscription directly
                sql.update_subscription(conn, sub["id"], {**asdict(prefs), "user_id": user_id, "updated_at": ts})
                return SubscribeResult(sql.get_subscription(conn, sub["id"]), "confirmed")
            kind = "notice"
        else:
            fields = {**asdict(prefs), "user_id": user_id, "updated_at": ts, "source": source,
                      "status": "active" if confirmed else "pending",
                      "confirmed_at": ts if confirmed else None, "unsubscribed_at": None}
            if sub is None:
                sub_id = sql.insert_subscription(conn, {**fields, "email": email, "created_at": ts,
                                                        "nonce": secrets.token_urlsafe(12)})
            else:
                sub_id = sub["id"]
                if sub["status"] in ("unsubscribed", "bounced"):
                    # A fresh start: old links stop working, the bounce count resets.
                    fields.update(nonce=secrets.token_urlsafe(12), permanent_failures=0)
                sql.update_subscription(conn, sub_id, fields)
            sub = sql.get_subscription(conn, sub_id)
            if confirmed:
                return SubscribeResult(sub, "confirmed")
            kind = "confirm"
        # One confirmation/notice per address per 10 minutes (form abuse).
        bucket = ts[:15]  # YYYY-MM-DDTHH:M
        period = f"{kind}:{sub['nonce']}:{bucket}"
        if sql.get_send_for_period(conn, sub["id"], period):
            return SubscribeResult(sub, "recently_mailed")
        msg_id, data = render.confirmation_message(settings, sub, kind=kind, now=now)
        send_id = sql.insert_send(conn, subscription=sub["id"], kind="confirm", period=period,
                                  recipient=sub["email"], message_id=msg_id, papers=[], message=data, now=ts)
    return SubscribeResult(sub, "notice_queued" if kind == "notice" else "confirmation_queued", send_id)


def _by_token(conn: sqlite3.Connection, settings: Settings, purpose: str, token: str) -> dict:
    max_age = settings.digest_confirm_max_age if purpose == "confirm" else None
    sub_id, nonce = read_token(settings.secret_key, purpose, (token or "").strip(), max_age=max_age)
    sub = sql.get_subscription(conn, sub_id)
    if sub is None or not secrets.compare_digest(sub["nonce"], nonce):
        raise TokenError("this link is no longer valid (the subscription was removed or renewed)")
    return sub


def confirm(conn: sqlite3.Connection, settings: Settings, token: str, *, now: datetime | None = None) -> dict:
    """Activate the subscription named by a confirmation token (idempotent)."""
    with transaction(conn):
        sub = _by_token(conn, settings, "confirm", token)
        if sub["status"] == "pending":
            ts = _now(now)
            sql.update_subscription(conn, sub["id"], {"status": "active", "confirmed_at": ts, "updated_at": ts})
        elif sub["status"] != "active":
            raise TokenError("this subscription was cancelled; subscribe again to restart it")
        return sql.get_subscription(conn, sub["id"])


def from_manage_token(conn: sqlite3.Connection, settings: Settings, token: str) -> dict:
    """The subscription a manage/unsubscribe link names, or :class:`TokenError`."""
    return _by_token(conn, settings, "manage", token)


def update_preferences(conn: sqlite3.Connection, settings: Settings, token: str, prefs: Preferences, *,
                       now: datetime | None = None) -> dict:
    """Change what and how often (from the manage link); re-activates a cancelled one."""
    prefs = prefs.validated()
    with transaction(conn):
        sub = from_manage_token(conn, settings, token)
        ts = _now(now)
        fields = {**asdict(prefs), "updated_at": ts}
        if sub["status"] in ("unsubscribed", "bounced") and sub["confirmed_at"]:
            # The link proves the address is theirs, so no new opt-in is needed.
            fields.update(status="active", unsubscribed_at=None, permanent_failures=0)
        sql.update_subscription(conn, sub["id"], fields)
        return sql.get_subscription(conn, sub["id"])


def unsubscribe(conn: sqlite3.Connection, settings: Settings, *, token: str | None = None,
                email: str | None = None, now: datetime | None = None) -> dict:
    """Cancel by manage token (mail links) or by address (the CLI). Idempotent.

    Digests already composed but not yet handed to SMTP are cancelled at delivery
    time (ledger state ``failed``, "cancelled before delivery").
    """
    with transaction(conn):
        if token:
            sub = from_manage_token(conn, settings, token)
        else:
            sub = sql.get_subscription_by_email(conn, normalize_email(email or ""))
            if sub is None:
                raise SubscriptionError(f"no subscription for {email}")
        if sub["status"] != "unsubscribed":
            ts = _now(now)
            sql.update_subscription(conn, sub["id"], {"status": "unsubscribed", "unsubscribed_at": ts,
                                                      "updated_at": ts})
        return sql.get_subscription(conn, sub["id"])


_TOKEN_IN_TEXT = re.compile(r"unsubscribe\s+([A-Za-z0-9_\-.]{20,})", re.I)


def unsubscribe_from_mail(conn: sqlite3.Connection, settings: Settings, raw: bytes) -> dict:
    """Handle a mail sent to the List-Unsubscribe ``mailto:`` address.

    The subject (as our mailto link pre-fills it) or the body must hold
    ``unsubscribe <token>``; the sender address alone is not trusted.
    """
    msg = message_from_bytes(raw, policy=default_policy)
    texts = [str(msg.get("Subject", ""))]
    body = msg.get_body(preferencelist=("plain",))
    if body is not None:
        texts.append(body.get_content())
    for text in texts:
        m = _TOKEN_IN_TEXT.search(text)
        if m:
            return unsubscribe(conn, settings, token=m.group(1))
    raise SubscriptionError("no unsubscribe token in the mail's subject or body")


def public_view(sub: dict) -> dict:
    """A subscription without its nonce, for listings and JSON output."""
    return {k: v for k, v in sub.items() if k != "nonce"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
