"""The digest pages end to end: real uvicorn + real SMTP; and the router in a bare FastAPI app."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
import uvicorn

from digest_support import SmtpServer, activate, add_papers, free_port, links_in, make_settings
from paperwire.digest import send as digest_send
from paperwire.store import digest as sql
from paperwire.store.db import connect


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


class Uvicorn:
    def __init__(self, app, port: int):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_subscribe_confirm_manage_and_one_click_unsubscribe_over_http(db_path, smtp):
    from paperwire.web.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(db_path, smtp.port, base_url=base)
    conn = connect(db_path)
    add_papers(conn, 6)
    app = create_app(settings, cache=False)
    with Uvicorn(app, port), httpx.Client(base_url=base, timeout=20) as browser:
        page = browser.get("/digest")
        assert page.status_code == 200 and "Get trending papers in your email inbox" in page.text
        token = _csrf(page.text)
        # No CSRF token: refused, nothing stored, nothing mailed.
        with httpx.Client(base_url=base) as stranger:
            r = stranger.post("/digest/subscribe", data={"email": "web@example.org", "frequency": "daily", "top_n": "3"})
        assert r.status_code == 403 and sql.list_subscriptions(conn) == []
        r = browser.post("/digest/subscribe", data={"csrf_token": token, "email": "web@example.org",
                                                   "frequency": "daily", "top_n": "3", "categories": "cs.CL"})
        assert r.status_code == 200 and "Check your inbox" in r.text
        smtp.wait_for(1)
        assert len(smtp.messages) == 1
        confirm_url = [u for u in links_in(smtp.messages[0].msg.get_body(("plain",)).get_content())
                       if "/digest/confirm?token=" in u][0]
        # Following the link shows a button; it does not confirm by itself (link scanners).
        r = browser.get(confirm_url)
        assert r.status_code == 200 and "Confirm subscription" in r.text
        assert sql.get_subscription_by_email(conn, "web@example.org")["status"] == "pending"
        r = browser.post("/digest/confirm", data={"token": confirm_url.split("token=")[1]})
        assert r.status_code == 200 and "subscribed" in r.text
        assert sql.get_subscription_by_email(conn, "web@example.org")["status"] == "active"

        assert digest_send.run_digests(conn, settings, "daily").sent == 1
        digest = smtp.messages[1].msg
        lu = str(digest["List-Unsubscribe"])
        https_url = re.search(r"<(http[^>]+)>", lu).group(1)
        manage_url = [u for u in links_in(digest.get_body(("plain",)).get_content()) if "/digest/manage?" in u][0]

        # Manage: change to weekly with a followed author (CSRF-protected form).
        r = browser.get(manage_url)
        assert r.status_code == 200 and "web@example.org" in r.text
        r = browser.post("/digest/manage", data={"csrf_token": _csrf(r.text), "token": manage_url.split("token=")[1],
                                                 "frequency": "weekly", "top_n": "4", "authors": "Ada Lovelace"})
        assert r.status_code == 200 and "Saved." in r.text
        sub = sql.get_subscription_by_email(conn, "web@example.org")
        assert sub["frequency"] == "weekly" and sub["authors"] == ["Ada Lovelace"] and sub["top_n"] == 4

        # RFC 8058 one-click: a bare POST from the mail provider, no cookies, no CSRF, no login.
        r = httpx.post(https_url, content=b"List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=20)
        assert r.status_code == 200 and "Unsubscribed" in r.text
        assert sql.get_subscription_by_email(conn, "web@example.org")["status"] == "unsubscribed"
        # The GET of the same URL only shows a page (safe for link scanners) ...
        assert "is unsubscribed" in httpx.get(https_url, timeout=20).text
        # ... and a forged token is refused.
        assert httpx.post(https_url[:-4] + "AAAA", timeout=20).status_code == 400

    report = digest_send.run_digests(conn, settings, "weekly")
    assert report.composed == 0 and len(smtp.messages) == 2
    conn.close()


def test_router_in_a_bare_app(db_path, smtp):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from paperwire.digest.subscriptions import links
    from paperwire.web.digest_routes import router

    settings = make_settings(db_path, smtp.port)
    app = FastAPI()
    app.state.settings = settings
    app.include_router(router)
    conn = connect(db_path)
    sub = activate(conn, settings, "bare@example.org", top_n=2)
    client = TestClient(app, base_url="https://testserver")  # the CSRF cookie is Secure for https sites
    page = client.get("/digest")
    assert page.status_code == 200 and "<form" in page.text
    r = client.post("/digest/subscribe", data={"csrf_token": _csrf(page.text), "email": "not-an-address",
                                              "top_n": "3", "frequency": "daily"})
    assert r.status_code == 400 and "valid email" in r.text
    hostile = client.post("/digest/subscribe", data={"csrf_token": _csrf(page.text), "email": "x@example.org",
                                                    "top_n": "3", "frequency": "daily",
                                                    "queries": "<script>alert(1)</script>" * 30})
    assert hostile.status_code == 400 and "<script>alert" not in hostile.text
    url = links(settings, sub)["unsubscribe_url"].replace("https://papers.example", "")
    r = TestClient(app).post(url, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    assert sql.get_subscription(conn, sub["id"])["status"] == "unsubscribed"
    assert client.get("/digest/manage?token=garbage").status_code == 400
    conn.close()


def test_subscribe_form_is_rate_limited_per_address(db_path, smtp, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from paperwire.web import digest_routes

    monkeypatch.setattr(digest_routes, "SUBSCRIBE_LIMIT", 2)
    app = FastAPI()
    app.state.settings = make_settings(db_path, smtp.port)
    app.include_router(digest_routes.router)
    client = TestClient(app, base_url="https://testserver")
    token = _csrf(client.get("/digest").text)
    codes = [client.post("/digest/subscribe", data={"csrf_token": token, "email": f"r{i}@example.org",
                                                   "top_n": "3", "frequency": "daily"}).status_code
             for i in range(3)]
    assert codes == [200, 200, 429]
    conn = connect(db_path)
    assert len(sql.list_subscriptions(conn)) == 2
    conn.close()
