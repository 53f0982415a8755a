"""Helpers for the web tests: a demo database built once per run, a real uvicorn
server on 127.0.0.1, hostile papers, and sign-up through the real forms."""

from __future__ import annotations

import contextlib
import functools
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.settings import Settings
from paperwire.store.db import connect

SECRET = "test-secret-key-not-for-production"

# A payload that would set window.__pwned / document.title if any of it ran.
HOSTILE_TITLE = 'Robust <script>window.__pwned="title";document.title="PWNED"</script> Learning & <b>bold</b>'
HOSTILE_ABSTRACT = (
    'We show that $E = mc^2$ and $\\alpha < \\beta$ hold when x < y & y > z. '
    '<script>window.__pwned="abstract";document.title="PWNED"</script> '
    '<img src=x onerror="window.__pwned=\'img\';document.title=\'PWNED\'"> '
    '<a href="javascript:window.__pwned=1">click</a> <iframe src="https://evil.example"></iframe> '
    '$\\href{javascript:alert(1)}{x}$ and "quotes" \' end.'
)
HOSTILE_ID = "2401.99999"


@functools.lru_cache(maxsize=1)
def _demo_template() -> Path:
    """The demo corpus + one hostile paper + a lexical search index, built once per test run."""
    from paperwire.demo import load_demo

    folder = Path(tempfile.mkdtemp(prefix="pw-web-demo-"))
    path = folder / "demo.db"
    conn = connect(path)
    load_demo(conn, progress=False)
    import_records(conn, [PaperRecord(
        title=HOSTILE_TITLE, abstract=HOSTILE_ABSTRACT, source="test", arxiv_id=HOSTILE_ID,
        authors=["Mallory <b>Evil</b>", "Alice O'Neil"], categories=["cs.LG"],
        published="2007-04-16T10:00:00Z", code_url="https://github.com/example/robust",
        project_url="https://example.org/robust",
    )])
    try:
        from paperwire.index.build import update_index

        update_index(conn, semantic=False)
    except ImportError:
        pass
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def demo_db(tmp_path: Path) -> Path:
    """A private copy of the demo database for one test."""
    src = _demo_template()
    dst = tmp_path / src.name
    # Index caches live next to the database (``demo.db.*``): copy them too.
    for item in src.parent.iterdir():
        if item.name.startswith(src.name):
            (shutil.copytree if item.is_dir() else shutil.copy)(item, tmp_path / item.name)
    return dst


def settings_for(db: Path, **kw) -> Settings:
    kw.setdefault("secret_key", SECRET)
    kw.setdefault("embedder", "none")
    return Settings(db_path=db, **kw)


def make_client(db: Path, **kw):
    from fastapi.testclient import TestClient

    from paperwire.web.app import create_app

    scheme = "https" if kw.get("base_url", "").startswith("https") else "http"
    return TestClient(create_app(settings_for(db, **kw)), base_url=f"{scheme}://testserver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(db: Path, **kw):
    """A real uvicorn server on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    from paperwire.web.app import create_app

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings_for(db, base_url=url, **kw))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                            proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_from(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the form"
    return m.group(1)


def signup(client, username: str = "alice", password: str = "correct horse battery", email: str | None = None):
    """Sign up through the real form; the client keeps the session cookie."""
    page = client.get("/signup")
    r = client.post("/signup", data={"username": username, "email": email or f"{username}@example.org",
                                     "password": password, "csrf_token": csrf_from(page.text), "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    return r
