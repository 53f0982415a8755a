"""The FastAPI application factory.

``create_app(settings)`` builds the whole site: pages, forms, the JSON API,
Atom feeds, the digest routes (``paperwire.web.digest_routes``), static files,
offline API docs at ``/docs``, and security headers on every response.
"""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperwire import __version__
from paperwire.store.dialect import TextRefused
from paperwire.settings import Settings
from paperwire.web import security
from paperwire.web.context import (HERE, JSONResponse, WebState, cache_key, cached_item, item_response, render,
                                   wants_json)
from paperwire.web.guard import RequestGuard, parse_networks

log = logging.getLogger(__name__)


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): adds the security headers."""

    def __init__(self, app, https: bool):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in security.security_headers(https).items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                present = {k.lower() for k, _ in message["headers"]}
                message["headers"] = list(message["headers"]) + [h for h in self.headers if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CacheFastPath:
    """Answers anonymous GETs that are in the page cache before routing, on the event
    loop: no thread hop, no parameter parsing. Misses go on to the routes, whose
    :func:`cached_page` fills the cache. Freshness is checked exactly as there
    (store revisions read from the database on every request)."""

    def __init__(self, app, st: WebState):
        self.app = app
        self.st = st

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["method"] == "GET" and self.st.cache_enabled
                and not scope["path"].startswith("/static/")):
            cookie = b""
            inm = None
            for k, v in scope["headers"]:
                if k == b"cookie":
                    cookie += v
                elif k == b"if-none-match":
                    inm = v.decode("latin-1")
            if security.SESSION_COOKIE.encode() + b"=" not in cookie:
                from paperwire.store import accounts

                item = cached_item(self.st, cache_key(scope, accounts.cache_revs(self.st.conn())))
                if item is not None:
                    return await item_response(item, inm)(scope, receive, send)
        await self.app(scope, receive, send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.startswith("/feeds/") or wants_json(request)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body", "path"))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return ("; ".join(parts) or "invalid request")[:1000]


def create_app(settings: Settings, *, demo: bool = False, cache: bool = True) -> FastAPI:
    """Build the paperwire site for ``settings`` (the database is migrated here)."""
    app = FastAPI(
        title="paperwire",
        version=__version__,
        description=(
            "Research papers: daily feed, trending, hybrid search, similar papers.\n\n"
            "`/api/daily_papers`, `/api/papers/{id}` and `/api/papers/search` are compatible with the "
            "Hugging Face Papers API (`HF_ENDPOINT=<this server> python -c 'from huggingface_hub import "
            "HfApi; print(list(HfApi().list_daily_papers()))'`). paperwire extras live under `/api/v1/`."
        ),
        docs_url=None,  # served below from vendored swagger-ui: works offline, no inline script
        redoc_url=None,
    )
    if demo:  # no SMTP server configured: mail goes to the local outbox (/outbox)
        from paperwire.digest.outbox import demo_settings

        settings = demo_settings(settings)
    st = WebState(settings, demo=demo, cache=cache)
    app.state.pw = st
    app.add_middleware(CacheFastPath, st=st)
    parse_networks(settings.trusted_proxies)  # a bad PAPERWIRE_TRUSTED_PROXIES fails here, not on the first request
    app.add_middleware(RequestGuard, st=st)  # client address, API auth before bodies, body limits
    # /healthz, /readyz, /metrics; request metrics (cache hits too); 503 + Retry-After while the store is down
    importlib.import_module("paperwire.web.ops").install(app, st)
    app.add_middleware(SecurityHeaders, https=st.https)  # added last = outermost: also covers cache hits
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _follow_store_changes(app, settings)

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        # In the site's frame (header, a way back, dark mode): templates/docs.html.
        return render(request, "docs.html", {})

    @app.get("/robots.txt", include_in_schema=False)
    def robots():
        return Response("User-agent: *\nDisallow: /api/\nDisallow: /search\n", media_type="text/plain")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response((HERE / "static" / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    from paperwire.web import account_routes, api, feeds, pages

    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(account_routes.router)
    st.env.globals["has_digest"] = _include_digest_routes(app)
    st.env.globals["query_input_chars"] = importlib.import_module("paperwire.web.searching").QUERY_INPUT_CHARS
    importlib.import_module("paperwire.web.library_routes").install(app, st)  # library pages + /api/v1/library
    importlib.import_module("paperwire.web.foryou_routes").install(app, st)  # For you, follows, feedback API
    importlib.import_module("paperwire.web.discuss_routes").install(app, st)  # comments, notifications, moderation
    app.include_router(importlib.import_module("paperwire.web.map_routes").router)  # /map, /trends, /api/v1/map
    importlib.import_module("paperwire.web.settings_routes").install(app, st)  # tokens, password, e-mail, avatar
    importlib.import_module("paperwire.web.profile_routes").install(app, st)  # /u/NAME, /admin/*, /api/papers
    app.include_router(pages.router)  # last: /papers/{id:path} is a catch-all under /papers/

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404:
            message = "Not found."
        if _is_api(request):
            return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        return render(request, "error.html", {"title": f"Error {exc.status_code}", "message": message},
                      status=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        message = _validation_message(exc)
        if _is_api(request):
            return JSONResponse({"error": message, "detail": jsonable(exc.errors())}, status_code=422)
        return render(request, "error.html", {"title": "Invalid request", "message": message}, status=422)

    @app.exception_handler(TextRefused)
    async def refused_text(request: Request, exc: TextRefused):
        message = "Text with a NUL byte (\\x00) is not accepted."
        if _is_api(request):
            return JSONResponse({"error": message}, status_code=400)
        return render(request, "error.html", {"title": "Invalid request", "message": message}, status=400)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        if _is_api(request):
            return JSONResponse({"error": "internal error"}, status_code=500)
        return HTMLResponse("<h1>Something went wrong</h1><p>The error was logged.</p>", status_code=500)

    return app


def jsonable(errors) -> list:
    """Validation errors as plain JSON: type, loc, msg. The offending ``input`` is not
    echoed back: it can be anything the client sent (a 2**64 that orjson refuses, which
    made this handler itself fail, or megabytes of text)."""
    out = []
    for e in errors:
        loc = [x if isinstance(x, str) or (isinstance(x, int) and abs(x) < 2**53) else str(x)
               for x in (e.get("loc") or ())]
        out.append({"type": str(e.get("type", "")), "loc": loc, "msg": str(e.get("msg", ""))})
    return out


def _follow_store_changes(app: FastAPI, settings: Settings) -> None:
    """On a PostgreSQL store, catch this process's index replicas up as soon as any node
    commits a change (LISTEN/NOTIFY, polling as a fallback: paperwire.index.follow)."""
    from paperwire.store.dialect import is_url

    if not is_url(settings.db_path):
        return
    from paperwire.index import follow

    app.router.on_startup.append(lambda: follow.start(settings.db_path))
    app.router.on_shutdown.append(follow.stop_all)


def _include_digest_routes(app: FastAPI) -> bool:
    """The digest area's pages (subscribe, confirm, unsubscribe), when present."""
    try:
        module = importlib.import_module("paperwire.web.digest_routes")
    except ImportError as exc:
        if exc.name != "paperwire.web.digest_routes":
            raise
        return False
    router = getattr(module, "router", None)
    if router is not None and router.routes:
        app.include_router(router)
        return True
    return False
