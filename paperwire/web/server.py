"""Running the site with uvicorn (``paperwire serve`` and ``paperwire demo``)."""

from __future__ import annotations

import dataclasses
import os

import click

from paperwire.settings import Settings, load_settings

_DEMO_ENV = "PAPERWIRE_WEB_DEMO"
_CACHE_ENV = "PAPERWIRE_WEB_CACHE"


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else (f"[{host}]" if ":" in host else host)


def run_server(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, demo: bool = False,
               workers: int = 1, cache: bool = True, log_level: str = "warning") -> None:
    """Serve the site until interrupted; prints the URL first.

    With ``workers > 1`` uvicorn starts that many processes; they share the
    SQLite database (WAL) and the secret key (passed through the environment,
    so a session cookie set by one worker is valid in all).
    """
    import uvicorn

    url = f"http://{_display_host(host)}:{port}/"
    if "PAPERWIRE_BASE_URL" not in os.environ and settings.base_url == Settings.__dataclass_fields__["base_url"].default:
        settings = dataclasses.replace(settings, base_url=url.rstrip("/"))
    if demo:
        prepare_demo_index(settings)
    click.echo(f"paperwire is serving {settings.db_path} at {url}  (Ctrl+C to stop)")
    if workers <= 1:
        from paperwire.web.app import create_app

        uvicorn.run(create_app(settings, demo=demo, cache=cache), host=host, port=port, log_level=log_level,
                    server_header=False)
        return
    os.environ.update({
        "PAPERWIRE_DB": str(settings.db_path),
        "PAPERWIRE_SECRET_KEY": settings.secret_key,
        "PAPERWIRE_BASE_URL": settings.base_url,
        _DEMO_ENV: "1" if demo else "0",
        _CACHE_ENV: "1" if cache else "0",
    })
    uvicorn.run("paperwire.web.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, server_header=False)


def prepare_demo_index(settings: Settings) -> None:
    """Make search and similar papers work in the demo: the lexical index now (seconds),
    embeddings in a background thread (minutes on a laptop CPU; search says
    "lexical" until they are ready). Without the search module or an embedding
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
            report = update_index(c, embedder=None if settings.embedder == "auto" else settings.embedder)
            for note in report.get("notes", []):
                click.echo(f"search index: {note}", err=True)
            if report.get("embeddings"):
                click.echo("search index: semantic search and similar papers are ready", err=True)
        except Exception as exc:  # noqa: BLE001 - the site works lexically without it
            click.echo(f"search index: embeddings not built ({exc})", err=True)
        finally:
            c.close()

    click.echo("building the semantic search index in the background (search is lexical until it is ready)")
    threading.Thread(target=embed, name="paperwire-demo-index", daemon=True).start()


def app_from_env():
    """App factory for uvicorn worker processes (settings from ``PAPERWIRE_*``)."""
    from paperwire.web.app import create_app

    return create_app(load_settings(), demo=os.environ.get(_DEMO_ENV) == "1",
                      cache=os.environ.get(_CACHE_ENV, "1") == "1")
