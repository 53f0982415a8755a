"""Checks in front of every route, as one pure ASGI middleware (no 500 on hostile input).

:class:`RequestGuard` runs before routing and before any body is read:

1. **The client's address.** ``X-Forwarded-For`` is believed only when the TCP peer is
   one of ``settings.trusted_proxies`` (default: none), and then only up to the first
   hop that is not a trusted proxy, so a client cannot pick its own address by sending
   the header. uvicorn's own proxy handling (which trusts 127.0.0.1) is switched off
   where paperwire starts uvicorn; the address found here replaces ``scope["client"]``,
   so rate limits everywhere (``request.client.host``) see it.
2. **API tokens.** A request with ``Authorization: Bearer TOKEN`` is checked here, on
   every route (paperwire/accounts/tokens.py): an unknown, revoked or banned-account
   token gets 401, a read-scope token on a POST/PUT/PATCH/DELETE 403.
2b. **API writes authenticate first.** A POST/PUT/PATCH/DELETE under ``/api/`` needs the
   ``X-CSRF-Token`` header (403) and a live session (401) before its body is read or
   validated: an anonymous request never gets a 422 that tells it about the body.
3. **Body size.** A body over ``settings.max_body_bytes`` (or a route prefix's entry in
   :data:`BODY_LIMITS`) gets 413: at once when ``Content-Length`` says so, else as soon
   as the streamed bytes pass the limit. A malformed ``Content-Length`` gets 400.
"""

from __future__ import annotations

import ipaddress
import logging

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from paperwire.store.health import store_down_reason
from paperwire.web import security
from paperwire.web.context import JSONResponse, WebState, check_csrf, current_user, render

log = logging.getLogger(__name__)

# Path prefix -> body limit in bytes, for routes that take more than the default
# (an upload form registers its own here). The longest matching prefix wins.
BODY_LIMITS: dict[str, int] = {}

# API writes that may be made without signing in (none today).
ANONYMOUS_API_WRITES: tuple[str, ...] = ()

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_networks(spec: str) -> list:
    """``"127.0.0.1, 10.0.0.0/8"`` -> ip networks; raises ValueError naming a bad entry."""
    nets = []
    for part in (spec or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"PAPERWIRE_TRUSTED_PROXIES: {part!r} is not an address or network") from None
    return nets


def _ip(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: list[str], trusted: list) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy; then the
    nearest ``X-Forwarded-For`` hop (from the right) that is not a trusted proxy.
    Returns None when the peer's own address is to be kept."""
    if not trusted or not peer:
        return None
    addr = _ip(peer)
    if addr is None or not any(addr in n for n in trusted):
        return None
    hops = [h for value in forwarded_for for h in value.split(",")]
    found = None
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            break  # garbage: believe nothing further left
        found = str(ip)
        if not any(ip in n for n in trusted):
            break
    return found


def body_limit(path: str, default: int) -> int:
    best, limit = -1, default
    for prefix, value in BODY_LIMITS.items():
        if path.startswith(prefix) and len(prefix) > best:
            best, limit = len(prefix), value
    return limit


class RequestGuard:
    """The middleware: see the module docstring."""

    def __init__(self, app, st: WebState):
        self.app = app
        self.st = st
        self.trusted = parse_networks(st.settings.trusted_proxies)
        self.default_limit = int(st.settings.max_body_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = None
        authorization = False
        forwarded: list[str] = []
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                length = v
            elif k == b"authorization":
                authorization = True
            elif k == b"x-forwarded-for":
                forwarded.append(v.decode("latin-1"))
        if self.trusted:
            peer = scope.get("client")
            real = client_address(peer[0] if peer else None, forwarded, self.trusted)
            if real is not None:
                scope = dict(scope, client=(real, 0))
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        if authorization:  # an API token: a revoked or unknown one is refused on every route (401)
            problem = self._token_problem(scope)
            if problem is not None:
                return await problem(scope, receive, send)
        if method in _UNSAFE and path.startswith("/api/") and not path.startswith(ANONYMOUS_API_WRITES):
            problem = self._api_writer_problem(scope)
            if problem is not None:
                return await problem(scope, receive, send)
        if method in _NO_BODY and length is None:
            return await self.app(scope, receive, send)
        limit = body_limit(path, self.default_limit)
        if length is not None:
            text = length.strip()
            if not text.isdigit() or len(text) > 18:
                return await self._error(scope, 400, "Bad request", "The Content-Length header is not a number.")(
                    scope, receive, send)
            if int(text) > limit:
                return await self._too_large(scope, limit)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI passes an HTTPException raised while reading the body on to
                    # the app's handler (any other error there would become a 400).
                    raise HTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, counted, send)

    def _token_problem(self, scope):
        """401 for a Bearer token that is not live, 403 for a read-scope token on a write."""
        request = Request(scope)
        try:
            user = current_user(request)  # caches the user in scope["state"] for the route
        except HTTPException as exc:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if user is not None and user.get("token_scope") == "read" and scope.get("method") in _UNSAFE:
            return JSONResponse({"error": "this API token is read-only (scope read); create a write token"},
                                status_code=403)
        return None

    def _api_writer_problem(self, scope):
        """A response for an API write that may not go on, else None (headers only)."""
        request = Request(scope)
        try:
            if not check_csrf(request, request.headers.get(security.CSRF_HEADER)):
                return JSONResponse({"error": "missing or wrong X-CSRF-Token header (GET /api/v1/csrf)"},
                                    status_code=403)
            if current_user(request) is None:
                return JSONResponse({"error": "sign in first"}, status_code=401)
        except Exception as exc:  # noqa: BLE001 - a broken cookie header must not be a 500
            if store_down_reason(exc):
                raise  # the store is down: a 503 (web/ops.py), not "bad credentials"
            log.warning("could not check an API write's credentials", exc_info=True)
            return JSONResponse({"error": "bad credentials"}, status_code=400)
        return None

    def _too_large(self, scope, limit: int):
        return self._error(scope, 413, "Too large", _too_large_text(limit))

    def _error(self, scope, status: int, title: str, message: str):
        request = Request(scope)
        if scope.get("path", "").startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        try:
            return render(request, "error.html", {"title": title, "message": message}, status=status)
        except Exception:  # noqa: BLE001 - the plain page below is the last resort
            log.warning("could not render the %s page", status, exc_info=True)
            return HTMLResponse(f"<h1>{title}</h1>", status_code=status)


def _too_large_text(limit: int) -> str:
    size = f"{limit // 1024} KiB" if limit < 1024 * 1024 else f"{limit / (1024 * 1024):g} MiB"
    return f"The request body is too large (at most {size})."
