"""Per-app state and per-request helpers: DB connections, the current user,
CSRF tokens, rendering, and the page cache.

The cache holds fully rendered anonymous responses keyed on the URL plus
``(rev, web_rev)`` from ``meta`` (both change in the same transaction as any
import, vote or hide) and, for trending orders, the current minute (the score
decays with time). A hit therefore never serves stale data; a signed-in user
always gets a fresh render (their vote buttons differ).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import anyio
import jinja2
import orjson
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.responses import JSONResponse as _StarletteJSON

from paperwire.accounts import tokens as api_tokens
from paperwire.settings import Settings
from paperwire.store import accounts, statememo
from paperwire.store.db import connect
from paperwire.web import security
from paperwire.web.textfmt import register_filters

HERE = Path(__file__).resolve().parent

# Searches (cache misses) a worker process runs at once. They are CPU-bound Python with
# short GIL-free stretches (query embedding, SQLite), so a second concurrent search in the
# same process mostly adds GIL hand-offs: measured on 2 cores with 2 workers, FastAPI's
# 40-thread pool cost ~1 ms more CPU per search and let p99 grow with the number of
# connections; one at a time, queued in arrival order, keeps each search at its own cost
# (bench/load_web.py, BENCHMARKS.md). Parallelism comes from one worker process per core.
SEARCH_THREADS = 1


class JSONResponse(_StarletteJSON):
    """JSON bodies written by orjson: a 20-hit search page (~80 kB, every abstract twice in
    HF's shape) takes ~10 us instead of ~290 us with ``json.dumps``, on every cache miss."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


class PageCache:
    """A small thread-safe LRU of rendered responses, bounded by entries and bytes."""

    def __init__(self, maxsize: int = 4096, max_bytes: int = 64 * 1024 * 1024):
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key, value) -> None:
        size = len(value[0])
        if size > self.max_bytes // 8:
            return  # one huge page must not flush everything else
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= len(old[0])
            self._data[key] = value
            self.bytes += size
            while len(self._data) > self.maxsize or self.bytes > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self.bytes -= len(evicted[0])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0


class WebState:
    """Everything the routes share: settings, templates, connections, cache."""

    def __init__(self, settings: Settings, *, demo: bool = False, cache: bool = True):
        self.settings = settings
        self.demo = demo
        self.https = settings.base_url.lower().startswith("https://")
        self.cache_enabled = cache
        self.cache = PageCache()
        self.inflight: dict = {}
        self.inflight_lock = threading.Lock()
        self.search_limiter: anyio.CapacityLimiter | None = None  # made in the event loop
        self._local = threading.local()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,  # every {{ }} is escaped; |safe is used only on our own HTML builders
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        register_filters(self.env)
        self.env.filters["http_url"] = security.http_url  # hrefs from imported records: http(s) only
        self.static_version = _static_version()
        self.env.globals.update(static_version=self.static_version, demo=demo, quote=quote, purl=paper_url)
        # Migrations once, up front, not in the first request of each thread.
        connect(settings.db_path).close()

    def conn(self):
        """This thread's connection (sqlite3 connections are not shared across threads)."""
        c = getattr(self._local, "conn", None)
        if c is None:
            c = connect(self.settings.db_path, migrate_schema=False)
            self._local.conn = c
        return c


def paper_url(paper_id: str) -> str:
    """The site path of a paper page (ids may hold '/', as old arXiv ids do)."""
    return "/papers/" + quote(paper_id, safe="/")


def _static_version() -> str:
    h = hashlib.sha1()
    for p in sorted((HERE / "static").glob("*.*")):
        h.update(p.name.encode())
        h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()[:10]


def state(request: Request) -> WebState:
    return request.app.state.pw


def conn(request: Request):
    return state(request).conn()


def dismissed_of(db_conn, user: dict) -> set[int]:
    """The reader's "not interested" row ids, read once per request: memoised on the
    request's user dict, which the feed filters and every card's button share."""
    gone = user.get("_dismissed")
    if gone is None:
        from paperwire import recommend

        gone = user["_dismissed"] = recommend.dismissed(db_conn, user["id"])
    return gone


def current_user(request: Request) -> dict | None:
    """The signed-in user (looked up once per request)."""
    if "user" in request.state._state:
        return request.state.user
    user = None
    bearer = api_tokens.bearer(request.headers.get("authorization"))
    if bearer is not None:
        # A personal API token (paperwire.accounts.tokens) replaces the session; a bad,
        # revoked or banned one is refused outright (401), never read as "anonymous".
        user = api_tokens.authenticate(conn(request), bearer)
        if user is None:
            raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
        request.state.user = user
        return user
    token = request.cookies.get(security.SESSION_COOKIE)
    if token and len(token) < 200:
        user = accounts.session_user(conn(request), token)
    request.state.user = user
    return user


def token_scope(request: Request) -> str | None:
    """``read`` / ``write`` for a request made with an API token, else None."""
    if request.headers.get("authorization") is None:
        return None
    user = current_user(request)
    return user.get("token_scope") if user else None


def csrf_token(request: Request) -> str:
    """The token forms on this page must carry; creates the CSRF cookie if needed."""
    cookie = request.cookies.get(security.CSRF_COOKIE) or request.state._state.get("new_csrf")
    if not cookie or len(cookie) > 200:
        cookie = security.new_token()
        request.state.new_csrf = cookie
    return security.csrf_for(state(request).settings.secret_key, cookie)


def check_csrf(request: Request, submitted: str | None) -> bool:
    """The form / header CSRF token is right, or the request carries a write-scope API
    token instead (a read-scope one never passes: it cannot write)."""
    scope = token_scope(request)
    if scope is not None:
        return scope == "write"
    return security.csrf_ok(
        state(request).settings.secret_key, request.cookies.get(security.CSRF_COOKIE), submitted
    )


def finish(request: Request, response: Response) -> Response:
    """Attach cookies created while rendering."""
    new = request.state._state.get("new_csrf")
    if new:
        response.set_cookie(security.CSRF_COOKIE, new, max_age=86400 * 30,
                            **security.cookie_kwargs(state(request).https))
    return response


def render(request: Request, template: str, context: dict, *, status: int = 200) -> HTMLResponse:
    st = state(request)
    ctx = {
        "request": request,
        "user": current_user(request),
        "csrf": (lambda: csrf_token(request)),
        "settings": st.settings,
        "path": request.url.path,
        "full_path": request.url.path + (("?" + request.url.query) if request.url.query else ""),
    }
    ctx.update(context)
    html = st.env.get_template(template).render(ctx)
    return finish(request, HTMLResponse(html, status_code=status))


def wants_json(request: Request) -> bool:
    """Datasette-style: ``?format=json`` (or an Accept header that asks for JSON only)."""
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return accept.startswith("application/json")


def json_response(data, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def cache_key(scope, rev: tuple[int, int]) -> tuple:
    """The cache key of a GET: path, query string, Accept (JSON or not), store revisions."""
    accept = b""
    for k, v in scope.get("headers", ()):
        if k == b"accept":
            accept = v[:40]
            break
    return (scope.get("path"), scope.get("query_string", b""), accept, rev)


def cached_item(st: "WebState", key: tuple):
    """A cached (body, content type, etag, extra headers) that is still fresh, else None."""
    item = st.cache.get(key)
    if item is None:
        return None
    if item[4] is not None and item[4] != int(time.time() // 60):
        return None  # a trending order from an earlier minute
    return item


def item_response(item, if_none_match: str | None) -> Response:
    body, media_type, etag, extra, _ = item
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Cookie, Accept", **extra}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def cached_page(request: Request, build: Callable[[], Response], *, time_bucket: bool = False) -> Response:
    """Serve an anonymous GET from the cache (with ETag / 304), building it on a miss.

    Signed-in users, and responses that set cookies or are not 200, bypass the cache.
    (Hits are usually answered earlier, by :class:`paperwire.web.app.CacheFastPath`.)
    The store's revisions and search state are read once for the whole request
    (:func:`paperwire.store.statememo.pinned`): the cache key and the page agree on them,
    and on PostgreSQL a search makes one state round trip instead of eight.
    """
    with statememo.pinned(conn(request)):
        return _cached_page(request, build, time_bucket)


def _cached_page(request: Request, build: Callable[[], Response], time_bucket: bool) -> Response:
    st = state(request)
    anonymous = security.SESSION_COOKIE not in request.cookies and "authorization" not in request.headers
    if not (st.cache_enabled and anonymous and request.method == "GET"):
        resp = build()
        resp.headers.setdefault("Cache-Control", "private, no-store" if not anonymous else "no-cache")
        return resp
    key = cache_key(request.scope, accounts.cache_revs(conn(request)))
    item = cached_item(st, key)
    if item is None:
        # Single flight: concurrent misses for the same key wait for the first one
        # instead of all running the same search (popular queries arrive in bursts).
        with st.inflight_lock:
            event = st.inflight.get(key)
            leader = event is None
            if leader:
                event = st.inflight[key] = threading.Event()
        if not leader:
            event.wait(30)
            item = cached_item(st, key)
        if item is None:
            try:
                resp = build()
                if resp.status_code != 200 or "set-cookie" in resp.headers:
                    return resp
                body = bytes(resp.body)
                etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
                extra = {k: v for k, v in resp.headers.items() if k.startswith("x-")}
                item = (body, resp.headers.get("content-type") or resp.media_type, etag, extra,
                        int(time.time() // 60) if time_bucket else None)
                st.cache.put(key, item)
            finally:
                if leader:
                    with st.inflight_lock:
                        st.inflight.pop(key, None)
                    event.set()
    return item_response(item, request.headers.get("if-none-match"))


async def cached_search(request: Request, build: Callable[[], Response]) -> Response:
    """:func:`cached_page` for the search routes, in a worker thread, at most
    :data:`SEARCH_THREADS` at a time per process (the others wait their turn, first come
    first served). Cache hits never get here: :class:`paperwire.web.app.CacheFastPath`
    answers them on the event loop, so they do not queue behind searches."""
    st = state(request)
    if st.search_limiter is None:
        st.search_limiter = anyio.CapacityLimiter(SEARCH_THREADS)
    return await anyio.to_thread.run_sync(cached_page, request, build, limiter=st.search_limiter)


# ---------------------------------------------------------------- JSON API auth (one copy for every router)

def api_error(status: int, message: str) -> JSONResponse:
    """The API's error body: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


def api_reader(request) -> tuple[dict | None, JSONResponse | None]:
    """(user, None) for a signed-in request (session or Bearer token), else (None, 401)."""
    user = current_user(request)
    return (user, None) if user else (None, api_error(401, "sign in first"))


def api_writer(request) -> tuple[dict | None, JSONResponse | None]:
    """(user, None) for an API write: the session plus the ``X-CSRF-Token`` header, or a
    write-scope Bearer token (which :func:`check_csrf` accepts); else (None, 403 or 401)."""
    if not check_csrf(request, request.headers.get("x-csrf-token")):
        return None, api_error(403, "missing or wrong X-CSRF-Token header (GET /api/v1/csrf)")
    return api_reader(request)
