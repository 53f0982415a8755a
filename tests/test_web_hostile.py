"""Hostile input to the site (issue 10): each case once gave a 500, a lockout or a bad href.

Real SQLite files; the cases that depend on the network stack (client addresses,
bodies on the wire) run against a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time

import httpx
import pytest

from paperwire.settings import Settings, secret_key_file, secret_key_note
from paperwire.store.db import connect
from web_support import csrf_from, demo_db, free_port, live_server, make_client, settings_for, signup


@pytest.fixture
def site(tmp_path):
    db = demo_db(tmp_path)
    with make_client(db) as client:
        client.db = db
        yield client


def _raw(url: str, request: bytes) -> bytes:
    """Send raw bytes to the server, return what it answers (for headers httpx won't send)."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


# ---------------------------------------------------------------- 1. CSRF tokens of any shape

FORMS = ["/login", "/signup", "/logout", "/submit", "/papers/0704.0001/upvote", "/papers/0704.0001/hide",
         "/digest/subscribe"]


def test_non_ascii_csrf_token_is_a_clean_403_on_every_form(tmp_path):
    # curl -b pw_csrf=abc --data-urlencode 'csrf_token=é' http://HOST/login was a 500 (compare_digest TypeError)
    with live_server(demo_db(tmp_path)) as url, httpx.Client(base_url=url, cookies={"pw_csrf": "abc"}) as http:
        for path in FORMS:
            for token in ("é", "\u202e\u0000", "a" * 5000, "☃" * 64):
                r = http.post(path, data={"csrf_token": token})
                assert r.status_code == 403, (path, token[:5], r.status_code)
                assert "Traceback" not in r.text
        # non-ASCII cookie values too (sent raw: the Cookie header is bytes on the wire)
        body = "csrf_token=%C3%A9".encode()
        resp = _raw(url, b"POST /login HTTP/1.1\r\nHost: x\r\nCookie: pw_csrf=\xc3\xa9\xff\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        assert resp.startswith(b"HTTP/1.1 403"), resp[:200]
        # and on the API's header
        r = http.post("/api/v1/submissions", json={"arxiv_id": "2401.00001"},
                      headers={"X-CSRF-Token": "é".encode("latin-1")})
        assert r.status_code == 403, r.text


# ---------------------------------------------------------------- 2. unsubscribe without a token, huge forms

def test_unsubscribe_post_without_a_token_is_400(site):
    r = site.post("/digest/unsubscribe")
    assert r.status_code == 400 and "no token" in r.text
    r = site.post("/digest/unsubscribe", data={"token": "   "})
    assert r.status_code == 400
    r = site.post("/digest/unsubscribe", files={"token": ("t.txt", b"abc")})  # a file, not a field
    assert r.status_code == 400


def test_huge_forms_get_413_before_they_are_read(tmp_path):
    with live_server(demo_db(tmp_path)) as url:
        # Declared 50 MB: answered at once, from the headers (nothing is sent after them).
        for path in ("/login", "/signup", "/digest/subscribe", "/digest/unsubscribe", "/submit"):
            resp = _raw(url, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                             f"Content-Length: {50 * 1024 * 1024}\r\nConnection: close\r\n\r\n".encode())
            assert resp.startswith(b"HTTP/1.1 413"), (path, resp[:200])
            assert b"too large" in resp
        # Streamed (chunked, no Content-Length): cut off once the bytes pass the limit.
        with httpx.Client(base_url=url, timeout=30) as http:
            def chunks():
                for _ in range(50):
                    yield b"a" * (1024 * 1024)
            try:
                r = http.post("/login", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert r.status_code == 413
            except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
                pass  # the server answered 413 and closed while we were still sending: fine
            assert http.get("/healthz").status_code == 200  # and it is still serving
        # A malformed Content-Length is a 400, not a 500.
        resp = _raw(url, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\nConnection: close\r\n\r\n")
        assert resp[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 413"), resp[:100]  # uvicorn may refuse it first


def test_streamed_body_over_the_limit_is_413_in_the_app(site):
    def chunks():
        for _ in range(3):
            yield b"x" * (600 * 1024)
    r = site.post("/signup", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "too large" in r.text
    r = site.post("/digest/subscribe", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_body_limit_is_a_setting(tmp_path):
    with make_client(demo_db(tmp_path), max_body_bytes=1000) as client:
        tok = csrf_from(client.get("/login").text)
        assert client.post("/login", data={"login": "x" * 2000, "csrf_token": tok}).status_code == 413
        assert client.post("/login", data={"login": "x", "password": "wrong password", "csrf_token": tok}
                           ).status_code == 401


# ---------------------------------------------------------------- 3. API bodies: size, auth before parsing

def test_api_writes_authenticate_before_the_body_is_read(site):
    big = b'{"arxiv_id": "' + b"1" * (3 * 1024 * 1024) + b'"}'
    for path in ("/api/v1/submissions", "/api/v1/papers/0704.0001/upvote"):
        # anonymous, no CSRF header: 403 whatever the body (not 422 for a bad one, not 413 for a big one)
        for body in (b"{not json", big, b'{"arxiv_id": 5}'):
            r = site.post(path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 403, (path, r.status_code, r.text[:200])
    token = site.get("/api/v1/csrf").json()["csrfToken"]
    h = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    for body in (b"{not json", big):
        r = site.post("/api/v1/submissions", content=body, headers=h)
        assert r.status_code == 401, r.text[:200]  # CSRF fine but not signed in
    signup(site)
    token = site.get("/api/v1/csrf").json()["csrfToken"]
    h = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    assert site.post("/api/v1/submissions", content=big, headers=h).status_code == 413
    assert site.post("/api/v1/submissions", content=b"{not json", headers=h).status_code == 422
    # An integer past 64 bits in a rejected body: the 422 handler once failed to write it back (orjson)
    r = site.post("/api/v1/submissions", content=b'{"arxiv_id": [-9223372036854775809]}', headers=h)
    assert r.status_code == 422 and "arxiv_id" in r.json()["error"]
    assert "9223372036854775809" not in r.text  # the input is not echoed back
    r = site.post("/api/v1/submissions", json={"arxiv_id": "0704.0001"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "known"


# ---------------------------------------------------------------- 4. links from records: http(s) only

BAD_LINKS = {"code_url": "javascript:alert(document.cookie)", "project_url": "data:text/html,<script>alert(1)</script>",
             "pdf_url": " JaVaScRiPt:alert(2)", "abs_url": "//evil.example/abs"}


def test_javascript_and_data_links_never_become_hrefs(site):
    conn = connect(site.db)
    # Written straight into the store, as an older import or another tool might have.
    conn.execute("UPDATE papers SET code_url=?, project_url=?, pdf_url=?, abs_url=? WHERE paper_id='0704.0001'",
                 tuple(BAD_LINKS.values()))
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='rev'")
    conn.close()
    page = site.get("/papers/0704.0001").text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert not [h for h in hrefs if h.strip().lower().startswith(("javascript:", "data:", "//evil"))], hrefs
    assert "Project page" not in page and ">Code<" not in page
    assert 'href="https://arxiv.org/pdf/0704.0001"' in page  # the fallback, not the bad link
    for url in ("/", "/papers/date/" + page_date(site), "/search?q=0704.0001&mode=lexical"):
        listing = site.get(url).text
        assert "javascript:" not in listing.lower() and "data:text" not in listing, url
    info = site.get("/api/papers/0704.0001").json()
    assert info["githubRepo"] is None and info["projectPage"] is None
    assert info["links"]["pdf"] is None and info["links"]["abs"] is None
    feed = site.get("/api/daily_papers", params={"date": page_date(site)}).text
    assert "javascript:" not in feed.lower() and "data:text" not in feed


def test_good_links_still_render(site):
    page = site.get("/papers/2401.99999").text  # web_support's hostile paper has proper https links
    assert 'href="https://github.com/example/robust"' in page and 'href="https://example.org/robust"' in page
    assert site.get("/api/papers/2401.99999").json()["githubRepo"] == "https://github.com/example/robust"


def page_date(site) -> str:
    conn = connect(site.db)
    try:
        return conn.execute("SELECT feed_date FROM papers WHERE paper_id='0704.0001'").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------- 5. login throttling without lockout

def _login(http, login, password, xff=None):
    tok = csrf_from(http.get("/login").text)
    headers = {"X-Forwarded-For": xff} if xff else {}
    return http.post("/login", data={"login": login, "password": password, "csrf_token": tok}, headers=headers)


def test_guessing_from_rotating_addresses_does_not_lock_the_owner_out(tmp_path):
    db = demo_db(tmp_path)
    with live_server(db, trusted_proxies="127.0.0.1") as url:
        with httpx.Client(base_url=url) as owner:
            signup(owner, "alice", "correct horse battery")
            owner.post("/logout", data={"csrf_token": csrf_from(owner.get("/").text)})
            assert "pw_device" in owner.cookies  # this browser is a known device of alice now
        with httpx.Client(base_url=url) as attacker:
            codes = [_login(attacker, "alice", f"guess {i}", xff=f"203.0.113.{i}").status_code for i in range(12)]
            assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes  # the account is throttled
            # a forged device cookie does not help
            attacker.cookies.set("pw_device", "1.abc.0123456789abcdef0123456789abcdef")
            assert _login(attacker, "alice", "guess x", xff="203.0.113.99").status_code == 429
        # The owner, from the browser they used before (new client, same cookies), gets in at once.
        with httpx.Client(base_url=url, cookies={"pw_device": owner.cookies["pw_device"]}) as back:
            r = _login(back, "alice", "correct horse battery", xff="198.51.100.7")
            assert r.status_code == 303, r.text[:300]
        # A new browser of the owner shares the account's budget: throttled while the guessing goes on.
        with httpx.Client(base_url=url) as fresh:
            assert _login(fresh, "alice", "correct horse battery", xff="198.51.100.8").status_code == 429


def test_known_device_has_its_own_limit(site):
    signup(site, "bob", "correct horse battery")
    site.post("/logout", data={"csrf_token": csrf_from(site.get("/").text)})
    codes = [_login(site, "bob", f"wrong {i}").status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429  # a stolen device cookie is still throttled


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(tmp_path):
    # Default: no trusted proxies, so an attacker on 127.0.0.1 (a local proxy) cannot rotate addresses.
    with live_server(demo_db(tmp_path)) as url, httpx.Client(base_url=url) as http:
        codes = [_login(http, f"user{i}", "wrong password", xff=f"203.0.113.{i}").status_code for i in range(11)]
        assert codes[:10] == [401] * 10 and codes[10] == 429, codes


def test_forwarded_chain_stops_at_the_first_untrusted_hop():
    from paperwire.web.guard import client_address, parse_networks

    trusted = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert client_address("127.0.0.1", ["1.2.3.4, 5.6.7.8, 10.1.1.1"], trusted) == "5.6.7.8"
    assert client_address("10.9.9.9", ["9.9.9.9"], trusted) == "9.9.9.9"
    assert client_address("8.8.8.8", ["1.2.3.4"], trusted) is None  # peer not trusted: keep the peer
    assert client_address("127.0.0.1", ["garbage, 1.2.3.4"], trusted) == "1.2.3.4"
    assert client_address("127.0.0.1", ["1.2.3.4, garbage"], trusted) is None
    assert client_address("127.0.0.1", [], trusted) is None
    assert client_address("127.0.0.1", ["[2001:db8::1]:443"], trusted) == "2001:db8::1"
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_networks("127.0.0.1, not-an-ip")


def test_serve_names_a_bad_trusted_proxies_setting(tmp_path):
    from click.testing import CliRunner

    from paperwire.cli import cli

    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "serve"], env={"PAPERWIRE_TRUSTED_PROXIES": "10.0.0.0/8, bogus"})
    assert r.exit_code == 1 and "PAPERWIRE_TRUSTED_PROXIES: 'bogus'" in r.output and "Traceback" not in r.output


def test_serve_ignores_forwarded_for_from_localhost(tmp_path):
    """The real ``paperwire serve``: uvicorn's own proxy handling (which trusts 127.0.0.1) is off."""
    db = demo_db(tmp_path)
    port = free_port()
    env = dict(os.environ, PAPERWIRE_SECRET_KEY="k" * 32, PAPERWIRE_EMBEDDER="none")
    proc = subprocess.Popen([sys.executable, "-m", "paperwire", "--db", str(db), "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode() if proc.poll() is not None else "no server")
                time.sleep(0.2)
        with httpx.Client(base_url=url) as http:
            codes = [_login(http, f"user{i}", "wrong password", xff=f"203.0.113.{i}").status_code for i in range(11)]
        assert codes[:10] == [401] * 10 and codes[10] == 429, codes
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------- 6. the secret key survives restarts

def test_generated_secret_key_is_kept_next_to_the_database(tmp_path):
    db = tmp_path / "site.db"
    a, b = Settings(db_path=db), Settings(db_path=db)
    assert a.secret_key == b.secret_key and len(a.secret_key) >= 32
    path = secret_key_file(db)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert a.secret_key_source == "file" and str(path) in secret_key_note(a)
    assert Settings(db_path=tmp_path / "other.db").secret_key != a.secret_key
    assert secret_key_note(Settings(db_path=db, secret_key="given")) is None
    mem = Settings(db_path=":memory:")
    assert mem.secret_key_source == "process" and "forms already open fail" in secret_key_note(mem)


def test_open_forms_survive_a_restart_without_a_configured_key(tmp_path):
    from fastapi.testclient import TestClient

    from paperwire.web.app import create_app

    db = demo_db(tmp_path)
    with TestClient(create_app(settings_for(db, secret_key=""))) as first:
        tok = csrf_from(first.get("/login").text)
        cookies = dict(first.cookies)
    # "restart": a new app (a new process would read the same key file)
    with TestClient(create_app(settings_for(db, secret_key="")), cookies=cookies) as second:
        r = second.post("/login", data={"login": "nobody", "password": "wrong password", "csrf_token": tok})
        assert r.status_code == 401  # the form was accepted (wrong password), not "form expired"


def test_serve_says_where_the_key_is(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import paperwire.web.server as server
    from paperwire.cli import cli

    ran = []
    monkeypatch.setattr(server, "run_server", lambda settings, **kw: ran.append(settings.secret_key))
    db = tmp_path / "x.db"
    r = CliRunner().invoke(cli, ["--db", str(db), "serve", "--workers", "2"], env={"PAPERWIRE_SECRET_KEY": None})
    assert r.exit_code == 0, r.output
    assert "sessions end when the server restarts" not in r.output
    assert str(secret_key_file(db)) in r.output
    assert ran == [secret_key_file(db).read_text().strip()]  # the workers get the kept key
