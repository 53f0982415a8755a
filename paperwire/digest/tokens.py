"""Signed tokens in mail links (itsdangerous, ``settings.secret_key``).

* confirm: timed, expires after ``settings.digest_confirm_max_age`` seconds;
* manage: change or cancel a subscription from any mail, without logging in. It
  does not expire (an unsubscribe link must keep working) but is bound to the
  subscription's ``nonce``, so rotating the nonce revokes every old link.
"""

from __future__ import annotations

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

_SALTS = {"confirm": "paperwire.digest.confirm", "manage": "paperwire.digest.manage"}


class TokenError(ValueError):
    """A link token that is malformed, forged, for another purpose, or expired."""


def make_token(secret: str, purpose: str, sub_id: int, nonce: str) -> str:
    """A URL-safe token naming subscription ``sub_id`` for ``purpose``."""
    if purpose == "confirm":
        return URLSafeTimedSerializer(secret, salt=_SALTS[purpose]).dumps([sub_id, nonce])
    return URLSafeSerializer(secret, salt=_SALTS[purpose]).dumps([sub_id, nonce])


def read_token(secret: str, purpose: str, token: str, *, max_age: int | None = None) -> tuple[int, str]:
    """``(sub_id, nonce)`` from a token, or :class:`TokenError` with a message for people."""
    try:
        if purpose == "confirm":
            value = URLSafeTimedSerializer(secret, salt=_SALTS[purpose]).loads(token, max_age=max_age)
        else:
            value = URLSafeSerializer(secret, salt=_SALTS[purpose]).loads(token)
    except SignatureExpired:
        raise TokenError("this confirmation link has expired; subscribe again to get a new one") from None
    except BadData:
        raise TokenError("this link is not valid (it may be incomplete or for another site)") from None
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], int)
            or not isinstance(value[1], str)):
        raise TokenError("this link is not valid")
    return value[0], value[1]
