"""Personal API tokens: ``Authorization: Bearer pw_...`` (what ``huggingface_hub`` sends
with ``token=``).

A token is ``pw_`` + 32 random bytes (URL-safe base64). Only its SHA-256 is stored, so it
is shown once, when created. Scopes: ``read`` (GETs as the user) and ``write`` (also
every write route, without CSRF: a browser never attaches a Bearer header on its own, so
a cross-site page cannot forge one). A revoked token, or one of a banned account, is
refused at once: every request looks the hash up.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import datetime, timedelta, timezone

from paperwire.model import utcnow_iso
from paperwire.store import tokens as sql
from paperwire.store.db import transaction

PREFIX = "pw_"
SCOPES = ("read", "write")
MAX_TOKENS = 50  # live tokens per account
MAX_NAME = 80


class TokenError(ValueError):
    """A token operation that cannot be done; the message is for people."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create_token(conn: sqlite3.Connection, user_id: int, scope: str = "read", name: str = "") -> dict:
    """Create a token; returns ``{"id", "token", "scope", "name", "prefix"}``. The token
    itself is in this answer only."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be read or write, not {str(scope)[:20]!r}")
    name = " ".join((name or "").split())[:MAX_NAME]
    token = PREFIX + secrets.token_urlsafe(32)
    with transaction(conn):
        live = [t for t in sql.user_tokens(conn, user_id) if not t["revoked_at"]]
        if len(live) >= MAX_TOKENS:
            raise TokenError(f"an account can have at most {MAX_TOKENS} live tokens; revoke one first")
        token_id = sql.insert_token(conn, user_id=user_id, name=name, token_hash=_hash(token),
                                    prefix=token[:9], scope=scope, now=utcnow_iso())
    return {"id": token_id, "token": token, "scope": scope, "name": name, "prefix": token[:9]}


def list_tokens(conn: sqlite3.Connection, user_id: int) -> list[dict]:
    """The account's tokens (never the secret): id, name, prefix, scope, created_at,
    last_used, revoked_at."""
    return sql.user_tokens(conn, user_id)


def revoke_token(conn: sqlite3.Connection, user_id: int, token_id) -> None:
    """Revoke one of the account's tokens; TokenError when it has no such live token."""
    try:
        tid = int(token_id)
    except (TypeError, ValueError):
        raise TokenError("no such token") from None
    with transaction(conn):
        if not 0 < tid < 2**62 or not sql.revoke_token(conn, user_id, tid, utcnow_iso()):
            raise TokenError(f"no live token {tid} on this account")


def authenticate(conn: sqlite3.Connection, token: str) -> dict | None:
    """The user (``id, username, email, is_admin`` plus ``token_scope``) a live token
    belongs to, else None. Records ``last_used`` (at most once a minute)."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = sql.token_user(conn, _hash(token))
    if row is None:
        return None
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not row["last_used"] or row["last_used"] < (now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ"):
        try:
            sql.touch(conn, row["token_id"], stamp, (now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        except Exception:  # noqa: BLE001 - a busy or read-only database must not refuse the request;
            pass           # last_used is a hint
    return {"id": row["id"], "username": row["username"], "email": row["email"], "is_admin": row["is_admin"],
            "token_scope": row["scope"], "token_id": row["token_id"]}


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None (other schemes,
    such as a reverse proxy's Basic credentials, are not ours and are ignored)."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()
