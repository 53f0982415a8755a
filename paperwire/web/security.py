"""Passwords, sessions, CSRF tokens, rate limits and security headers.

- Passwords: argon2id (argon2-cffi defaults), rehashed on login when the
  parameters change.
- Sessions: a random token in an HttpOnly, SameSite=Lax cookie (Secure when
  ``base_url`` is https); the database keeps only its SHA-256, so signing out
  really ends the session and a database leak does not leak sessions.
- CSRF: a random ``pw_csrf`` cookie plus a form field / ``X-CSRF-Token`` header
  holding HMAC(secret_key, cookie). A cross-site page can neither read the cookie
  nor compute the HMAC; SameSite=Lax is a second layer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SESSION_COOKIE = "pw_session"
CSRF_COOKIE = "pw_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_DAYS = 30

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything, but don't let a request burn CPU on megabytes

# Login: per client address and per account name; sign-up: per address.
# The per-account limit does not apply to a browser that holds a known-device cookie
# for that account (it has its own per-device limit): a stranger guessing passwords
# cannot lock the owner out of the browsers they already signed in from.
LOGIN_LIMIT, LOGIN_WINDOW_S = 10, 300
DEVICE_LIMIT = 10
DEVICE_COOKIE = "pw_device"
DEVICE_DAYS = 365
SIGNUP_LIMIT, SIGNUP_WINDOW_S = 5, 3600

_hasher = PasswordHasher()
# Verifying against this keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(ok, new_hash): new_hash is set when the stored hash should be upgraded."""
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored_hash is None:
        return False, None
    if _hasher.check_needs_rehash(stored_hash):
        return True, _hasher.hash(password)
    return True, None


def validate_signup(username: str, email: str, password: str) -> str | None:
    """A message for people when the sign-up form is not acceptable, else None."""
    if not USERNAME_RE.match(username or ""):
        return "Usernames are 2-32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit."
    if not EMAIL_RE.match(email or "") or len(email) > 254:
        return "Please enter a valid e-mail address."
    if len(password or "") < MIN_PASSWORD:
        return f"Passwords need at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return "That password is too long."
    return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_for(secret_key: str, cookie_value: str) -> str:
    """The form token that goes with a CSRF cookie."""
    return hmac.new(secret_key.encode(), b"csrf:" + cookie_value.encode("utf-8", "replace"),
                    hashlib.sha256).hexdigest()


def csrf_ok(secret_key: str, cookie_value: str | None, submitted: str | None) -> bool:
    """Whether ``submitted`` is the form token for this CSRF cookie. Any input is safe:
    missing, over-long or non-ASCII values are simply wrong (``compare_digest`` raises
    TypeError on non-ASCII *str*, so both sides are compared as bytes)."""
    if not cookie_value or not submitted or not isinstance(submitted, str) or len(submitted) > 200:
        return False
    if len(cookie_value) > 200:
        return False
    expected = csrf_for(secret_key, cookie_value).encode()
    return hmac.compare_digest(expected, submitted.encode("utf-8", "replace"))


def _device_mac(secret_key: str, user_id: int, nonce: str) -> str:
    return hmac.new(secret_key.encode(), f"device:{user_id}:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def new_device_cookie(secret_key: str, user_id: int) -> str:
    """A known-device cookie: ``<user id>.<nonce>.<mac>``, set after a successful sign-in."""
    nonce = secrets.token_urlsafe(12)
    return f"{int(user_id)}.{nonce}.{_device_mac(secret_key, int(user_id), nonce)}"


def known_device(secret_key: str, cookie: str | None, user_id: int) -> str | None:
    """The device nonce when ``cookie`` is a genuine known-device cookie of ``user_id``, else None."""
    if not cookie or len(cookie) > 200:
        return None
    parts = cookie.split(".")
    if len(parts) != 3 or parts[0] != str(int(user_id)) or not parts[1]:
        return None
    mac = _device_mac(secret_key, int(user_id), parts[1]).encode()
    if not hmac.compare_digest(mac, parts[2].encode("utf-8", "replace")):
        return None
    return parts[1]


def http_url(value) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None.

    Links from imported records (code, project page, abs, PDF) go through this before
    they become an ``href`` or an API field: ``javascript:``, ``data:``, relative and
    scheme-relative URLs, and anything with control characters or spaces are dropped.
    (Imports filter too; this keeps records stored before that, or written by other
    tools, harmless.)
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > 2048 or any(ord(c) < 0x21 or c in "\x7f\\" for c in url):
        return None
    scheme, sep, rest = url.partition(":")
    if not sep or scheme.lower() not in ("http", "https") or not rest.startswith("//") or len(rest) < 3:
        return None
    host = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if not host or host.startswith("@"):
        return None
    return url


def cookie_kwargs(secure: bool) -> dict:
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}


# No inline script anywhere: KaTeX and our enhancements load from /static.
# KaTeX sets element.style via the DOM, which style-src does not restrict.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def security_headers(https: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers
