"""Discussions on papers: post, reply, edit, delete, upvote, report; threads for pages.

Threads are one level deep, as on Hugging Face: a reply to a reply attaches to the
top-level comment (``comments.parent`` always names a top-level comment). A deleted
comment keeps its row as a placeholder so its replies stay in place; a comment a
moderator hid shows as a placeholder to everyone but admins. ``papers.num_comments``
counts the visible comments and changes in the same transaction as every write.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

from paperwire.discuss import markdown
from paperwire.model import utcnow_iso
from paperwire.store import accounts
from paperwire.store import discuss as sql
from paperwire.store.db import transaction

RATE_LIMIT, RATE_WINDOW_S = 10, 60  # comments (and edits) per account per minute
REPORT_LIMIT, REPORT_WINDOW_S = 20, 3600
MAX_REASON = 500


class DiscussError(ValueError):
    """A user-facing refusal; ``status`` is the HTTP status the web layer answers."""

    status = 422


class NotFound(DiscussError):
    status = 404


class Forbidden(DiscussError):
    status = 403


class TooLong(DiscussError):
    status = 413


class RateLimited(DiscussError):
    status = 429

    def __init__(self, wait: float):
        self.wait = wait
        super().__init__(f"you are commenting too fast; try again in {int(wait) + 1} seconds")


@dataclass
class Posted:
    """A new comment and the notifications (ids) it created."""

    comment: dict
    notifications: list[int]


def _render(text: str) -> tuple[str, str]:
    try:
        raw = markdown.check_length(text)
    except markdown.CommentTooLong as exc:
        raise TooLong(str(exc)) from None
    if not raw:
        raise DiscussError("the comment is empty")
    return raw, markdown.render(raw)


def _writer_check(conn: sqlite3.Connection, user: dict) -> None:
    if sql.is_banned(conn, user["id"]):
        raise Forbidden("this account may not take part in discussions (banned by a moderator)")


def _rate(conn: sqlite3.Connection, user: dict) -> None:
    wait = accounts.rate_hit(conn, f"comment:{user['id']}", limit=RATE_LIMIT, window_s=RATE_WINDOW_S)
    if wait:
        raise RateLimited(wait)


def visible_comment(conn: sqlite3.Connection, comment_id, user: dict | None = None) -> dict:
    """A comment that this user may see (admins see hidden ones), else :class:`NotFound`."""
    try:
        cid = int(comment_id)
    except (TypeError, ValueError):
        raise NotFound("no such comment") from None
    c = sql.get_comment(conn, cid) if 0 < cid < 2**62 else None
    if c is None or (c["hidden"] and not (user and user.get("is_admin"))):
        raise NotFound("no such comment")
    return c


def post(conn: sqlite3.Connection, user: dict, paper: dict, text: str, parent=None, *,
         on_notify=None) -> Posted:
    """A new comment on ``paper`` (a store row dict) by ``user``; ``parent`` replies.

    ``on_notify(conn, notification_id, recipient_user_id, comment)`` runs inside the
    transaction for each reply notification (the mail module queues the mail there, so
    a notification and its mail exist together or not at all).
    """
    _writer_check(conn, user)
    if paper.get("hidden"):
        raise NotFound("no such paper")
    raw, html = _render(text)
    target = None
    if parent not in (None, ""):
        target = visible_comment(conn, parent, user)
        if target["paper"] != paper["id"]:
            raise DiscussError("that comment belongs to another paper")
        if target["deleted_at"] or target["hidden"]:
            raise DiscussError("that comment was removed; replies are closed")
    _rate(conn, user)
    now = utcnow_iso()
    top = None if target is None else (target["parent"] or target["id"])
    notified: list[int] = []
    with transaction(conn):
        cid = sql.insert_comment(conn, paper=paper["id"], parent=top, user_id=user["id"], raw=raw, html=html, now=now)
        sql.recount(conn, paper["id"])
        sql.bump_web_rev(conn)
        comment = sql.get_comment(conn, cid)
        if target is not None:
            # The author of the comment replied to, and (for a reply to a reply) the
            # thread's author too; never yourself.
            recipients = [target["user_id"]]
            if target["parent"]:
                top_row = sql.get_comment(conn, target["parent"])
                if top_row and not top_row["deleted_at"]:
                    recipients.append(top_row["user_id"])
            for rid in dict.fromkeys(r for r in recipients if r and r != user["id"]):
                nid = sql.add_notification(conn, user_id=rid, kind="reply", comment_id=cid, actor_id=user["id"],
                                           now=now)
                if nid is not None:
                    notified.append(nid)
                    if on_notify is not None:
                        on_notify(conn, nid, rid, comment)
    return Posted(comment, notified)


def _own(conn: sqlite3.Connection, user: dict, comment_id) -> dict:
    c = visible_comment(conn, comment_id, user)
    if c["deleted_at"]:
        raise NotFound("that comment was deleted")
    if c["user_id"] != user["id"] and not user.get("is_admin"):
        raise Forbidden("only its author can change a comment")
    return c


def edit(conn: sqlite3.Connection, user: dict, comment_id, text: str) -> dict:
    """Replace a comment's text (its author); the old text is kept as a revision."""
    c = _own(conn, user, comment_id)
    if c["user_id"] != user["id"]:
        raise Forbidden("only its author can edit a comment")
    _writer_check(conn, user)
    raw, html = _render(text)
    if raw == c["raw"]:
        return c
    _rate(conn, user)
    with transaction(conn):
        sql.update_text(conn, c["id"], raw, html, utcnow_iso())
        sql.bump_web_rev(conn)
    return sql.get_comment(conn, c["id"])


def delete(conn: sqlite3.Connection, user: dict, comment_id) -> dict:
    """Delete a comment (its author, or an admin): a placeholder keeps its replies."""
    c = _own(conn, user, comment_id)
    with transaction(conn):
        sql.mark_deleted(conn, c["id"], utcnow_iso())
        sql.recount(conn, c["paper"])
        sql.bump_web_rev(conn)
    return sql.get_comment(conn, c["id"])


def vote(conn: sqlite3.Connection, user: dict, comment_id, up: bool = True) -> int:
    """Upvote (or take back); one vote per user and comment. Returns the comment's total."""
    c = visible_comment(conn, comment_id, user)
    if c["deleted_at"]:
        raise NotFound("that comment was deleted")
    _writer_check(conn, user)
    with transaction(conn):
        total = sql.set_comment_vote(conn, user["id"], c["id"], up, utcnow_iso())
        sql.bump_web_rev(conn)
    return total


def report(conn: sqlite3.Connection, user: dict, comment_id, reason: str = "") -> bool:
    """Put a comment in the moderation queue; False when this user's report is already open."""
    c = visible_comment(conn, comment_id, user)
    if c["deleted_at"]:
        raise NotFound("that comment was deleted")
    _writer_check(conn, user)
    wait = accounts.rate_hit(conn, f"comment-report:{user['id']}", limit=REPORT_LIMIT, window_s=REPORT_WINDOW_S)
    if wait:
        raise RateLimited(wait)
    reason = " ".join((reason or "").split())[:MAX_REASON]
    with transaction(conn):
        return sql.add_report(conn, c["id"], user["id"], reason, utcnow_iso())


# ---------------------------------------------------------------- reading

def thread(conn: sqlite3.Connection, paper_rowid: int, user: dict | None = None) -> list[dict]:
    """Top-level comments (oldest first), each with ``replies``; what this user may see.

    Each comment dict gains ``state``: ``shown`` | ``deleted`` | ``hidden`` (a
    placeholder for everyone but admins, who get ``shown`` plus ``hidden: 1``).
    A removed comment with no visible reply is left out altogether.
    """
    admin = bool(user and user.get("is_admin"))
    rows = sql.paper_comments(conn, paper_rowid)
    voted = sql.user_comment_votes(conn, user["id"], paper_rowid) if user else set()
    tops: dict[int, dict] = {}
    replies: list[dict] = []
    for c in rows:
        c["state"] = "deleted" if c["deleted_at"] else ("hidden" if c["hidden"] and not admin else "shown")
        c["voted"] = c["id"] in voted
        c["mine"] = bool(user and c["user_id"] == user["id"])
        c["replies"] = []
        if c["state"] != "shown":
            c["raw"] = c["html"] = ""
        if c["parent"]:
            replies.append(c)
        else:
            tops[c["id"]] = c
    for r in replies:
        top = tops.get(r["parent"])
        if top is not None and r["state"] == "shown":
            top["replies"].append(r)
    return [t for t in tops.values() if t["state"] == "shown" or t["replies"]]


def count_shown(threads: list[dict]) -> int:
    return sum((t["state"] == "shown") + len(t["replies"]) for t in threads)


def new_nonce() -> str:
    return secrets.token_urlsafe(12)
