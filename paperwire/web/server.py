"""Running the site with uvicorn (``paperwire serve`` and ``paperwire demo``)."""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import sys

import click

from paperwire.settings import Settings, load_settings
from paperwire.store.dialect import db_label

_DEMO_ENV = "PAPERWIRE_WEB_DEMO"
_CACHE_ENV = "PAPERWIRE_WEB_CACHE"


# numpy's BLAS libraries read these once, when numpy is first imported.
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> None:
    """One BLAS thread per server process, unless the environment already says otherwise.

    A server's parallelism is its worker processes and concurrent requests. OpenBLAS would
    start a thread per core in every worker and let them spin after each small mat-vec of a
    search (vector scores, fusion): on 2 cores with 2 workers that doubled the CPU time of a
    hybrid search request (18 vs 8 ms, bench/load_web.py) and made p99 depend on the
    spinning threads' time slices. Call before numpy is imported."""
    for var in _BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")
    if "numpy" in sys.modules:  # already loaded (an embedding caller): ask the library itself
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")


class PortInUse(Exception):
    """The port to serve on is taken (or not allowed); the message says what to do."""


def _can_bind(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: SO_REUSEADDR passes TIME_WAIT leftovers but not a live listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUse` with a one-line hint when ``host:port`` cannot be served on.

    Checked before anything slow starts, so a busy port costs one line, not a traceback
    from inside uvicorn after the demo index is built."""
    exc = _can_bind(host, port)
    if exc is None:
        return
    if exc.errno == errno.EADDRINUSE:
        free = next((p for p in range(port + 1, min(port + 50, 65536)) if _can_bind(host, p) is None), None)
        hint = f"try --port {free}" if free else "pick another with --port"
        raise PortInUse(f"port {port} is in use: {hint}")
    if exc.errno == errno.EACCES:
        raise PortInUse(f"port {port} needs privileges on this system: try --port 8000")
    if exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME) or isinstance(exc, socket.gaierror):
        raise PortInUse(f"cannot listen on {host}: not an address of this machine (see --host)")
    raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc} (see --host and --port)")


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else (f"[{host}]" if ":" in host else host)


def run_server(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, demo: bool = False,
               workers: int = 1, cache: bool = True, log_level: str = "warning") -> None:
    """Serve the site until interrupted; prints the URL first.

    With ``workers > 1`` that many processes serve, each with its own listening socket
    on Linux (:mod:`paperwire.web.workers`: the kernel spreads connections evenly),
    elsewhere uvicorn's workers on one shared socket. They share the SQLite database
    (WAL) and the secret key (passed through the environment, so a session cookie set
    by one worker is valid in all). Each process warms its search engine at start
    (:func:`warm_search`), so the first searches do not pay for loading the model.
    """
    check_port(host, port)
    limit_blas_threads()  # before anything imports numpy; worker processes inherit it
    import uvicorn

    url = f"http://{_display_host(host)}:{port}/"
    if "PAPERWIRE_BASE_URL" not in os.environ and settings.base_url == Settings.__dataclass_fields__["base_url"].default:
        settings = dataclasses.replace(settings, base_url=url.rstrip("/"))
    if demo:
        prepare_demo_index(settings)
    click.echo(f"paperwire is serving {db_label(settings.db_path)} at {url}  (Ctrl+C to stop)")
    from paperwire.web.metrics import prepare_multiprocess  # /metrics sums every worker

    prepare_multiprocess(workers)  # before the workers start: they inherit PROMETHEUS_MULTIPROC_DIR
    if workers <= 1:
        from paperwire.web.app import create_app

        app = create_app(settings, demo=demo, cache=cache)
        warm_search(settings)
        freeze_startup_objects()
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False,
                    proxy_headers=False)  # X-Forwarded-For: only from PAPERWIRE_TRUSTED_PROXIES (web/guard.py)
        return
    os.environ.update({
        "PAPERWIRE_DB": str(settings.db_path),
        "PAPERWIRE_SECRET_KEY": settings.secret_key,
        "PAPERWIRE_BASE_URL": settings.base_url,
        _DEMO_ENV: "1" if demo else "0",
        _CACHE_ENV: "1" if cache else "0",
    })
    from paperwire.web import workers as multi

    if multi.available():
        code = multi.serve(host, port, workers, log_level)
        if code:
            raise SystemExit(code)
        return
    uvicorn.run("paperwire.web.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, server_header=False, proxy_headers=False)


def warm_search(settings: Settings) -> None:
    """Load the search engine (query embedder, vector and lexical indexes) in a background
    thread with one throwaway query, so a fresh worker's first searches answer in
    milliseconds instead of waiting ~1 s for the model and index to load (a p99 spike in
    every load test, and for the first visitors after a restart)."""
    if settings.embedder == "none":
        return
    import threading

    def run() -> None:
        from paperwire.store.db import connect
        from paperwire.web import searching

        try:
            conn = connect(settings.db_path, migrate_schema=False)
            try:
                searching.run_search(conn, "paperwire", limit=1)
            finally:
                conn.close()
        except Exception:  # noqa: BLE001 - only a warm-up: the first real search will report problems
            pass

    threading.Thread(target=run, name="paperwire-warm-search", daemon=True).start()


def prepare_demo_index(settings: Settings) -> None:
    """Make search and similar papers work in the demo: the lexical index now (seconds),
    embeddings in a background thread (minutes on a laptop CPU; search says
    "lexical" until they are ready), then the topic map, then the passage vectors. Without the search module or an embedding
    backend this quietly does less."""
    import threading

    from paperwire.store.db import connect

    try:
        from paperwire.index.build import update_index
    except ImportError:
        return
    conn = connect(settings.db_path)
    try:
        update_index(conn, semantic=False)
    finally:
        conn.close()
    if settings.embedder == "none":
        return

    def embed() -> None:
        c = connect(settings.db_path)
        try:
            chosen = None if settings.embedder == "auto" else settings.embedder
            # Paper vectors first (semantic search, similar papers, the map), then the passages.
            report = update_index(c, embedder=chosen, passages=False)
            for note in report.get("notes", []):
                click.echo(f"search index: {note}", err=True)
            if report.get("embeddings"):
                click.echo("search index: semantic search and similar papers are ready", err=True)
            try:  # the topic map (/map, /trends) from those embeddings; needs the map extra
                from paperwire.topics import map as topic_map

                summary = topic_map.build_map(c)
                click.echo(f"topic map: {summary['points']} papers in {summary['coarse_clusters']} topics", err=True)
            except Exception as exc:  # noqa: BLE001 - /map shows an empty state instead
                click.echo(f"topic map: not built ({exc})", err=True)
            if report.get("embeddings"):
                done = update_index(c, embedder=chosen).get("passages")
                if done is not None:
                    click.echo(f"search index: passage scoring is ready ({done['passages']} sentences)", err=True)
        except Exception as exc:  # noqa: BLE001 - the site works lexically without it
            click.echo(f"search index: embeddings not built ({exc})", err=True)
        finally:
            c.close()

    click.echo("building the semantic search index in the background (search is lexical until it is ready)")
    threading.Thread(target=embed, name="paperwire-demo-index", daemon=True).start()


def app_from_env():
    """App factory for uvicorn worker processes (settings from ``PAPERWIRE_*``)."""
    limit_blas_threads()
    from paperwire.web.app import create_app

    settings = load_settings()
    app = create_app(settings, demo=os.environ.get(_DEMO_ENV) == "1", cache=os.environ.get(_CACHE_ENV, "1") == "1")
    warm_search(settings)
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Move everything allocated at start-up (FastAPI, Jinja2, NumPy, tantivy modules: ~90,000
    objects) out of the garbage collector's reach. They live as long as the process, and a
    full collection walking them took ~126 ms, one every ~100 requests: the slowest requests'
    tail (BENCHMARKS.md, For you speed)."""
    import gc

    gc.collect()
    gc.freeze()
