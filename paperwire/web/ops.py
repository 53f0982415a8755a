"""Operations: ``/healthz``, ``/readyz``, ``/metrics``, request metrics, and 503 (never 500)
while the store is down. Installed by :func:`install` as one pure ASGI middleware.

The middleware sits inside the security headers and outside everything else (the request
guard, the page cache's fast path, the routes), so that

* every request is counted, cache hits answered before routing included, by method,
  route *template* (``/papers/{paper_id:path}``, never the raw path: bounded label
  cardinality) and status, with its latency;
* the three ops paths are answered before the guard and the cache, which both read the
  store: ``/healthz`` never touches the store (the process is alive), ``/readyz`` says
  in JSON what is unreachable or behind, and a scraper's ``Authorization: Bearer`` header
  is not taken for an API token;
* an exception that means "the store is unreachable or busy" (``StoreUnavailable``, a
  psycopg ``OperationalError``/``InterfaceError`` such as a connection lost in a server
  restart or a pool timeout, SQLite's "database is locked" after ``busy_timeout``), from
  any layer inside, becomes a 503 with ``Retry-After`` (an HTML page, or JSON for the API)
  instead of a 500 with a traceback in the log. The first such answer of an outage logs one
  line, and the first good answer after it another; the connections heal by themselves
  (:mod:`paperwire.store.pgpool`), so the node needs no restart.

Several worker processes (``paperwire serve --workers N``): each process has its own
metrics, and the workers share one port (SO_REUSEPORT, :mod:`paperwire.web.workers`), so
a scraper cannot choose a worker and scraping them separately is impossible. The server
therefore runs prometheus-client's multiprocess mode (:mod:`paperwire.web.metrics`): the
workers write their samples to files in ``PROMETHEUS_MULTIPROC_DIR`` and whichever worker
answers ``/metrics`` sums them all. docs/web.md says who may scrape (``MetricsAccess``).
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import parse_qsl

import anyio
import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import HTMLResponse, Response

from paperwire import __version__, readiness
from paperwire.store.health import marked_down, store_down_reason
from paperwire.web import metrics
from paperwire.web.context import WebState

log = logging.getLogger(__name__)

RETRY_AFTER = "5"  # seconds: a restart of PostgreSQL takes about that long
# Routes that do not read the store: a good answer from one does not end an outage.
_NO_STORE = ("/healthz", "/metrics", "/static", "/robots.txt", "/favicon.ico", "unmatched")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install(app, st: WebState) -> None:
    """Add the ops middleware to ``app`` (call between the request guard and the security
    headers, so that it is inside the headers and outside the rest)."""
    access = metrics.MetricsAccess.from_env()  # a bad PAPERWIRE_METRICS_ALLOW fails here, not on a scrape
    app.add_middleware(OpsMiddleware, st=st, site=app, access=access)
    # The pool logs every failed reconnect attempt and discarded connection as a warning:
    # during an outage that is a line a second. The outage lines below say it once.
    pool_log = logging.getLogger("psycopg.pool")
    if pool_log.level == logging.NOTSET:
        pool_log.setLevel(logging.ERROR)


class Outage:
    """This process's view of a store outage: one log line when it starts, one when it ends."""

    def __init__(self):
        self.since: float | None = None
        self.refused = 0
        self._lock = threading.Lock()

    def refuse(self, reason: str) -> None:
        """A request was answered 503 for ``reason``; the first of an outage is logged."""
        with self._lock:
            first = self.since is None
            if first:
                self.since, self.refused = time.monotonic(), 0
            self.refused += 1
        metrics.UNAVAILABLE.inc()
        if first:
            log.warning("store unavailable, answering 503 with Retry-After until it is back: %s", reason)

    def recovered(self) -> None:
        """A request that needed the store got a good answer: log the end of an outage."""
        with self._lock:
            if self.since is None:
                return
            seconds, refused, self.since = time.monotonic() - self.since, self.refused, None
        log.warning("store reachable again after %.1f s (%d requests answered 503)", seconds, refused)


def _wants_json(scope) -> bool:
    path = scope.get("path", "")
    if path.startswith(("/api/", "/feeds/", "/readyz", "/metrics", "/healthz")):
        return True
    qs = scope.get("query_string", b"")
    if b"format=json" in qs and ("format", "json") in parse_qsl(qs.decode("latin-1")):
        return True
    for k, v in scope.get("headers", ()):
        if k == b"accept":
            return v.startswith(b"application/json")
    return False


def unavailable_response(scope, st: WebState) -> Response:
    """The 503 a request gets while the store is down: JSON for the API, else a page."""
    headers = {"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}
    message = "The paper store is not reachable right now. Please try again in a few seconds."
    if _wants_json(scope):
        return Response(orjson.dumps({"error": message}), status_code=503, headers=headers,
                        media_type="application/json")
    try:  # the site's error page, without a user (looking one up needs the store)
        html = st.env.get_template("error.html").render(
            request=None, user=None, csrf=lambda: "", settings=st.settings, path=scope.get("path", ""),
            full_path=scope.get("path", ""), title="Temporarily unavailable", message=message)
    except Exception:  # noqa: BLE001 - the plain page is the last resort
        html = f"<!doctype html><title>Temporarily unavailable</title><h1>Temporarily unavailable</h1><p>{message}</p>"
    return HTMLResponse(html, status_code=503, headers=headers)


# ---------------------------------------------------------------- the middleware

class OpsMiddleware:
    """Pure ASGI: counts and times every request, answers the ops paths, turns store
    outages into 503. Costs a dict lookup or two per request on top of the metric updates."""

    def __init__(self, app, st: WebState, site, access: "metrics.MetricsAccess"):
        self.app = app
        self.st = st
        self.site = site  # the FastAPI app, whose routes give the templates of unrouted answers
        self.access = access
        self.outage = Outage()
        self.ops = {"/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics}
        self._templates: dict = {}
        self._children: dict = {}
        self._table: _RouteTable | None = None
        self._threads_capped = False

    def _cap_threads(self) -> None:
        """On a PostgreSQL store, run at most as many request threads as the pool can give
        connections to. Each thread keeps its own store connection (``WebState.conn``), and
        the pool has ``POOL_MAX`` per process: with anyio's default of 40 threads, 16
        concurrent requests left 8 threads waiting 30 s for a connection that never came
        back, then answering 503. The event loop, the readiness catch-up and the search
        warm-up hold one connection each, hence the reserve. Requests beyond the cap wait
        their turn on the event loop instead (the work is CPU-bound Python: more threads
        would not run it faster)."""
        self._threads_capped = True
        from paperwire.store import dialect

        if dialect.is_url(self.st.settings.db_path):
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(2, min(limiter.total_tokens, dialect.POOL_MAX - 4))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self._threads_capped:
            self._cap_threads()
        t0 = time.perf_counter()
        status = 0
        unsent = 499  # what an answer never sent counts as: the client went away (nginx's 499) ...

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        op = self.ops.get(scope["path"])
        if op is not None and scope.get("method") not in ("GET", "HEAD"):
            op = _not_allowed
        try:
            await (op or self.app)(scope, receive, send_status)
        except Exception as exc:
            reason = store_down_reason(exc)
            if reason is None or status:  # a bug, or the answer had already begun: the 500 handler's
                unsent = 500  # ... or an error
                raise
            self.outage.refuse(reason)
            await unavailable_response(scope, self.st)(scope, receive, send_status)
        finally:
            self._record(scope, status or unsent, time.perf_counter() - t0)

    def _record(self, scope, status: int, seconds: float) -> None:
        route = self._template(scope)
        method = scope.get("method", "GET")
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds tuples: once per combination
            if len(self._children) > 8192:
                self._children.clear()
            children = self._children[key] = (
                metrics.REQUESTS.labels(method if method in _METHODS else "other", route, str(status)),
                metrics.LATENCY.labels(route))
        children[0].inc()
        children[1].observe(seconds)
        if (self.outage.since is not None and status < 500 and not route.startswith(_NO_STORE)
                and not marked_down(self.st.settings.db_path)):
            # A thread's old connection or a cached page can still answer while the server
            # shuts down; only a connection opened after the failure ends the outage.
            self.outage.recovered()

    def _template(self, scope) -> str:
        path = scope.get("path", "")
        if path in self.ops:
            return path
        table = self._table or self._build_table()
        route = scope.get("route")
        if route is not None:  # routed: the full template of that route object
            found = table.by_route.get(id(route))
            if found is not None:
                return found
        key = (scope.get("method"), path)
        found = self._templates.get(key)
        if found is None:  # answered before routing (a cache hit, the guard) or by no route
            found = table.match(scope.get("method", "GET"), path)
            if len(self._templates) > 4096:  # raw paths are unbounded; the memo is not
                self._templates.clear()
            self._templates[key] = found
        return found

    def _build_table(self) -> "_RouteTable":
        self._table = _RouteTable(self.site)
        return self._table

    # ------------------------------------------------------------ the ops paths

    async def _healthz(self, scope, receive, send):
        body = orjson.dumps({"ok": True, "version": __version__})
        await _json(body, 200)(scope, receive, send)

    async def _readyz(self, scope, receive, send):
        code, body = await anyio.to_thread.run_sync(readiness.readiness, self.st.conn, self.st.settings.db_path)
        headers = {"Retry-After": RETRY_AFTER} if code != 200 else None
        await _json(orjson.dumps(body), code, headers)(scope, receive, send)

    async def _metrics(self, scope, receive, send):
        if not self.access.allowed(scope):
            body = orjson.dumps({"error": f"metrics are served to {metrics.METRICS_ALLOW_ENV} networks (default: "
                                          f"loopback) or with the {metrics.METRICS_TOKEN_ENV} bearer token"})
            return await _json(body, 403)(scope, receive, send)
        body = await anyio.to_thread.run_sync(metrics.scrape, self.st)
        await Response(body, media_type=CONTENT_TYPE_LATEST,
                       headers={"Cache-Control": "no-store"})(scope, receive, send)


class _RouteTable:
    """The site's routes as full path templates (an included router's prefix included),
    by route object and as patterns for requests answered before routing."""

    def __init__(self, site):
        from starlette.routing import Mount, compile_path

        try:  # FastAPI >= 0.16x keeps included routers nested; this flattens them
            from fastapi.routing import iter_route_contexts

            items = [(rc.original_route, rc.path, rc.methods) for rc in iter_route_contexts(site.router.routes)]
        except ImportError:  # older FastAPI: the app's routes are flat, prefixes applied
            items = [(r, getattr(r, "path", None), getattr(r, "methods", None)) for r in site.router.routes]
        self.by_route: dict[int, str] = {}
        ambiguous = set()
        self.patterns = []
        for original, path, methods in items:
            if not path:
                continue
            if id(original) in self.by_route and self.by_route[id(original)] != path:
                ambiguous.add(id(original))  # one route object under two prefixes: match the path instead
            self.by_route[id(original)] = path
            pattern = path.rstrip("/") + "/{path:path}" if isinstance(original, Mount) else path
            self.patterns.append((compile_path(pattern)[0], frozenset(methods or ()), path))
        for key in ambiguous:
            del self.by_route[key]

    def match(self, method: str, path: str) -> str:
        """The template of the first route matching ``path`` (preferring one that takes
        ``method``, as the router does), else ``unmatched``."""
        other = None
        for regex, methods, template in self.patterns:
            if regex.match(path):
                if not methods or method in methods or (method == "HEAD" and "GET" in methods):
                    return template
                other = other or template
        return other or "unmatched"


async def _not_allowed(scope, receive, send):
    await _json(b'{"error":"method not allowed"}', 405, {"Allow": "GET, HEAD"})(scope, receive, send)


def _json(body: bytes, status: int, headers: dict | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", **(headers or {})})


