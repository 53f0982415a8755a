"""E-mail verification, password reset and change, change of address, ban and unban.

Passwords are hashed and checked by the caller (the web layer owns argon2); these
functions take the new hash and do the writes, each in one transaction.
"""

from __future__ import annotations

import sqlite3

from paperwire.accounts import links
from paperwire.accounts.links import LinkError
from paperwire.model import utcnow_iso
from paperwire.settings import Settings
from paperwire.store import accounts
from paperwire.store import profiles as sql
from paperwire.store import tokens as token_sql
from paperwire.store.db import transaction


class AccountError(ValueError):
    """An account change that cannot be made; the message is for people."""


def is_verified(conn: sqlite3.Connection, user: dict) -> bool:
    """Whether the account's current address was confirmed."""
    return sql.verified_email(conn, user["id"]) == user["email"]


# ---------------------------------------------------------------- verification

def send_verification(conn: sqlite3.Connection, settings: Settings, user: dict) -> str:
    """Mail a verification link for the account's current address (MailError if it can't)."""
    return links.send_link(conn, settings, "verify", user, user["email"], user["email"])


def verify_email(conn: sqlite3.Connection, settings: Settings, token: str) -> dict:
    """Mark the address of a verify link as confirmed; returns the user."""
    user_id, email = links.read_token(settings, "verify", token)
    with transaction(conn):
        user = accounts.get_user(conn, user_id)
        if user is None or user["email"] != email:
            raise LinkError("this link is for an address the account no longer has")
        sql.mark_verified(conn, user_id, email, utcnow_iso())
    return user


# ---------------------------------------------------------------- password reset

def request_reset(conn: sqlite3.Connection, settings: Settings, login: str) -> bool:
    """Mail a reset link to the account with this e-mail or username. Returns whether
    one was sent; callers show the same answer either way (no account enumeration)."""
    login = (login or "").strip()[:254]
    user = accounts.find_user(conn, login) if login else None
    if user is None or not user.get("email"):
        return False
    links.send_link(conn, settings, "reset", user, user["email"], links.fingerprint(user["password_hash"]))
    return True


def check_reset(conn: sqlite3.Connection, settings: Settings, token: str) -> dict:
    """The user a reset link is for, if it is still good (LinkError otherwise)."""
    user_id, stamp = links.read_token(settings, "reset", token)
    user = accounts.get_user(conn, user_id)
    if user is None or links.fingerprint(user["password_hash"]) != stamp:
        raise LinkError("this link was already used or the password has changed since; ask for a new one")
    return user


def reset_password(conn: sqlite3.Connection, settings: Settings, token: str, new_hash: str) -> dict:
    """Set a new password from a reset link: the link dies, every session and API token
    of the account ends, and the address counts as verified (the mail reached it)."""
    with transaction(conn):
        user = check_reset(conn, settings, token)  # re-checked inside: two tabs cannot both use one link
        accounts.set_password_hash(conn, user["id"], new_hash)
        sql.delete_sessions(conn, user["id"])
        token_sql.revoke_all(conn, user["id"], utcnow_iso())
        sql.mark_verified(conn, user["id"], user["email"], utcnow_iso())
    return user


def change_password(conn: sqlite3.Connection, user_id: int, new_hash: str, *, keep_session: str | None = None) -> None:
    """Store a new password hash (the caller checked the current password). Other
    sessions end; the one given in ``keep_session`` (a session token) is made anew by
    the caller. Reset links issued before stop working (their fingerprint changed)."""
    with transaction(conn):
        accounts.set_password_hash(conn, user_id, new_hash)
        sql.delete_sessions(conn, user_id)


# ---------------------------------------------------------------- change of address

def request_email_change(conn: sqlite3.Connection, settings: Settings, user: dict, new_email: str) -> str:
    """Mail a confirmation link to the new address (the account keeps the old one until
    it is opened)."""
    if new_email == user["email"]:
        raise AccountError("That is already your address.")
    if sql.email_taken(conn, new_email):
        raise AccountError("Another account uses that address.")
    bound = new_email + "\n" + links.fingerprint(user["email"])
    return links.send_link(conn, settings, "email", user, new_email, bound)


def confirm_email_change(conn: sqlite3.Connection, settings: Settings, token: str) -> dict:
    """Switch the account to the address of a change link (works once)."""
    user_id, bound = links.read_token(settings, "email", token)
    new_email, _, stamp = bound.partition("\n")
    with transaction(conn):
        user = accounts.get_user(conn, user_id)
        if user is None or links.fingerprint(user["email"]) != stamp:
            raise LinkError("this link was already used, or the address changed since")
        if not sql.set_email(conn, user_id, new_email):
            raise LinkError("another account took that address meanwhile")
        sql.mark_verified(conn, user_id, new_email, utcnow_iso())
        user["email"] = new_email
    return user
