"""Admin actions on accounts and papers: ban / unban a user, hide / unhide a paper.

The ban table and the audit log are the discussion area's (``user_bans``,
``admin_audit``, migration m0700): a ban from the moderation queue and one from the
users page are the same ban. A ban here also ends the account's sessions and revokes
its API tokens, and sign-in refuses banned accounts, so a banned user can neither sign
in nor write. Every action writes an audit row in the same transaction.
"""

from __future__ import annotations

import sqlite3

from paperwire.model import utcnow_iso
from paperwire.store import accounts
from paperwire.store import discuss as discuss_sql
from paperwire.store import profiles as sql
from paperwire.store import tokens as token_sql
from paperwire.store.db import transaction


class AdminError(ValueError):
    """An admin action that cannot be done; the message is for people."""


def _admin(user: dict | None) -> dict:
    if not user or not user.get("is_admin"):
        raise AdminError("only admins can do that")
    return user


def is_banned(conn: sqlite3.Connection, user_id: int) -> bool:
    return discuss_sql.is_banned(conn, user_id)


def ban(conn: sqlite3.Connection, admin: dict, username: str, reason: str = "") -> str:
    """Ban an account: it cannot sign in, its sessions end and its tokens are revoked."""
    _admin(admin)
    reason = " ".join((reason or "").split())[:500]
    now = utcnow_iso()
    with transaction(conn):
        target = sql.user_by_name(conn, username)
        if target is None:
            raise AdminError(f"no user {username[:40]!r}")
        if target["is_admin"]:
            raise AdminError("admins cannot be banned; take the admin role away first")
        if not discuss_sql.ban_user(conn, target["id"], admin["id"], reason, now):
            raise AdminError(f"{target['username']} is already banned")
        sql.delete_sessions(conn, target["id"])
        token_sql.revoke_all(conn, target["id"], now)
        discuss_sql.audit(conn, admin_id=admin["id"], admin_name=admin["username"], action="ban",
                          target_kind="user", target_id=target["id"], detail=reason, now=now)
        sql.bump(conn)
    return f"{target['username']} is banned."


def unban(conn: sqlite3.Connection, admin: dict, username: str, reason: str = "") -> str:
    """Lift a ban (the account signs in again; its old tokens stay revoked)."""
    _admin(admin)
    now = utcnow_iso()
    with transaction(conn):
        target = sql.user_by_name(conn, username)
        if target is None or not discuss_sql.unban_user(conn, target["id"]):
            raise AdminError(f"{username[:40]!r} is not banned")
        discuss_sql.audit(conn, admin_id=admin["id"], admin_name=admin["username"], action="unban",
                          target_kind="user", target_id=target["id"], detail=" ".join(reason.split())[:500],
                          now=now)
    return f"{target['username']} may sign in again."


def set_paper_hidden(conn: sqlite3.Connection, admin: dict, paper: dict, hidden: bool) -> str:
    """Hide or unhide a paper, with an audit row."""
    _admin(admin)
    with transaction(conn):
        accounts.set_hidden(conn, paper["id"], hidden)
        discuss_sql.audit(conn, admin_id=admin["id"], admin_name=admin["username"],
                          action="hide-paper" if hidden else "unhide-paper", target_kind="paper",
                          target_id=paper["paper_id"], detail="", now=utcnow_iso())
    return "The paper is hidden." if hidden else "The paper is shown again."


def users(conn: sqlite3.Connection, admin: dict, q: str = "") -> list[dict]:
    _admin(admin)
    return sql.users_page(conn, (q or "").strip()[:100])


def hidden_papers(conn: sqlite3.Connection, admin: dict) -> list[dict]:
    _admin(admin)
    return sql.hidden_papers(conn)


def audit_log(conn: sqlite3.Connection, admin: dict, limit: int = 200) -> list[dict]:
    _admin(admin)
    return discuss_sql.audit_log(conn, limit)
