"""The admin moderation queue: reported comments, hide / restore / dismiss, ban and
unban authors. Every action writes a row of ``admin_audit`` in its own transaction."""

from __future__ import annotations

import sqlite3

from paperwire.discuss.comments import DiscussError, Forbidden, NotFound
from paperwire.model import utcnow_iso
from paperwire.store import accounts
from paperwire.store import discuss as sql
from paperwire.store import profiles, tokens
from paperwire.store.db import transaction

ACTIONS = ("hide", "restore", "dismiss", "ban", "unban")


def _admin(user: dict | None) -> dict:
    if not user or not user.get("is_admin"):
        raise Forbidden("only admins can moderate")
    return user


def queue(conn: sqlite3.Connection, admin: dict) -> dict:
    """What the moderation page shows: open reports, bans, the audit log."""
    _admin(admin)
    return {"reports": sql.open_reports(conn), "bans": sql.banned_users(conn), "audit": sql.audit_log(conn)}


def act(conn: sqlite3.Connection, admin: dict, action: str, target, reason: str = "") -> str:
    """Apply one moderation ``action``. ``target`` is a comment id, except for unban
    (a user id). ``ban`` bans the comment's author and hides the comment. Returns a
    sentence for the flash message."""
    _admin(admin)
    if action not in ACTIONS:
        raise DiscussError(f"unknown action {action[:20]!r}")
    try:
        tid = int(target)
    except (TypeError, ValueError):
        raise NotFound("no such comment or user") from None
    if not 0 < tid < 2**62:
        raise NotFound("no such comment or user")
    now = utcnow_iso()
    reason = " ".join((reason or "").split())[:500]
    with transaction(conn):
        if action == "unban":
            if not sql.unban_user(conn, tid):
                raise NotFound("that account is not banned")
            sql.audit(conn, admin_id=admin["id"], admin_name=admin["username"], action="unban", target_kind="user",
                      target_id=tid, detail=reason, now=now)
            return "The account may comment again."
        c = sql.get_comment(conn, tid)
        if c is None:
            raise NotFound("no such comment")
        message = ""
        if action in ("hide", "ban"):
            sql.set_comment_hidden(conn, tid, True)
            message = "The comment is hidden."
        elif action == "restore":
            sql.set_comment_hidden(conn, tid, False)
            message = "The comment is shown again."
        else:
            message = "The reports were dismissed."
        if action == "ban":
            if c["user_id"] is None:
                raise DiscussError("that comment's account no longer exists")
            target_user = accounts.get_user(conn, c["user_id"])
            if target_user and target_user["is_admin"]:
                raise Forbidden("admins cannot be banned here")
            if sql.ban_user(conn, c["user_id"], admin["id"], reason, now):
                # As a ban from the admin page does: its sessions end and its API tokens stop
                # working, so the banned account is signed out everywhere at once.
                profiles.delete_sessions(conn, c["user_id"])
                tokens.revoke_all(conn, c["user_id"], now)
            sql.audit(conn, admin_id=admin["id"], admin_name=admin["username"], action="ban", target_kind="user",
                      target_id=c["user_id"], detail=f"for comment {tid}" + (f": {reason}" if reason else ""), now=now)
            message = f"{c['author']} is banned and the comment is hidden."
        sql.resolve_reports(conn, tid, action, now)
        sql.audit(conn, admin_id=admin["id"], admin_name=admin["username"], action=action if action != "ban" else "hide",
                  target_kind="comment", target_id=tid, detail=reason, now=now)
        sql.recount(conn, c["paper"])
        sql.bump_web_rev(conn)
    return message
