"""Signed one-click links in digest mails: "save" and "not interested", no login needed.

A link names (user, paper, action) and is signed with ``settings.secret_key``
(itsdangerous, like the digest's unsubscribe links). Opening it (GET) only shows a
confirm button; the POST acts, since mail scanners prefetch every GET. Links expire after
``MAX_AGE`` seconds: a forwarded mail should not keep acting on a library for ever.
"""

from __future__ import annotations

from urllib.parse import quote

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

SALT = "paperwire.recommend.mail-action"
ACTIONS = {"save": "Save to your library", "not_interested": "Not interested"}
MAX_AGE = 90 * 86400


class LinkError(ValueError):
    """A link token that is malformed, forged or expired; the message is for people."""


def make_link_token(secret: str, user_id: int, paper_id: str, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown mail action {action!r}")
    return URLSafeTimedSerializer(secret, salt=SALT).dumps([int(user_id), str(paper_id), action])


def read_link_token(secret: str, token: str) -> tuple[int, str, str]:
    """``(user_id, paper_id, action)`` of a mail link token, or :class:`LinkError`."""
    if not token or len(token) > 1000:
        raise LinkError("this link is not valid (it may be incomplete)")
    try:
        value = URLSafeTimedSerializer(secret, salt=SALT).loads(token, max_age=MAX_AGE)
    except SignatureExpired:
        raise LinkError("this link has expired; use the buttons on the site instead") from None
    except BadData:
        raise LinkError("this link is not valid (it may be incomplete or for another site)") from None
    if (not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], int)
            or not isinstance(value[1], str) or value[2] not in ACTIONS):
        raise LinkError("this link is not valid")
    return value[0], value[1], value[2]


def action_links(secret: str, base_url: str, user_id: int, paper_id: str) -> dict[str, str]:
    """``{"save": url, "not_interested": url}`` for one paper of one reader's mail."""
    base = base_url.rstrip("/")
    return {a: f"{base}/for-you/mail?token={quote(make_link_token(secret, user_id, paper_id, a))}" for a in ACTIONS}


def perform(conn, token_user: int, paper_id: str, action: str) -> bool:
    """Do what a confirmed mail link says. True when something changed."""
    if action == "save":
        from paperwire import library

        return library.save(conn, token_user, paper_id, source="mail")
    from paperwire import recommend

    return recommend.not_interested(conn, token_user, paper_id)
