"""The site's pages and forms, through FastAPI's TestClient on a real SQLite file."""

from __future__ import annotations

import re

import pytest

from paperwire.store.db import connect
from web_support import HOSTILE_ID, csrf_from, demo_db, make_client, signup


@pytest.fixture
def site(tmp_path):
    db = demo_db(tmp_path)
    with make_client(db) as client:
        client.db = db
        yield client


def _count(html: str) -> int:
    m = re.search(r"· (\d+) papers?", html)
    assert m, "no paper count on the page"
    return int(m.group(1))


def test_home_shows_latest_day_with_prev_navigation(site):
    conn = connect(site.db)
    latest = conn.execute("SELECT MAX(feed_date) FROM papers").fetchone()[0]
    n_latest = conn.execute("SELECT COUNT(*) FROM papers WHERE feed_date=?", (latest,)).fetchone()[0]
    r = site.get("/")
    assert r.status_code == 200
    # The newest listing page's day (the undated seed page takes it too), not "today".
    assert (latest, _count(r.text), n_latest) == ("2026-03-17", n_latest, 229)
    assert '<a href="/digest" title="Get trending papers in your email inbox"' in r.text  # nav links the digest
    assert r.text.count('class="card"') == 30  # first page
    # previous = the next newest listing page's day (Mar 14), named on the link
    prev = re.search(r'<a class="btn btn-ghost" rel="prev" href="/papers/date/([0-9-]+)"', r.text).group(1)
    assert prev == "2026-03-14" and ">← Mar 14, 2026</a>" in r.text
    assert prev == conn.execute("SELECT MAX(feed_date) FROM papers WHERE feed_date < ?", (latest,)).fetchone()[0]
    page = site.get(f"/papers/date/{prev}")
    assert page.status_code == 200
    assert f'rel="next" href="/papers/date/{latest}"' in page.text
    # page 2 and the date sort
    assert site.get("/?page=2").text.count('class="card"') == 30
    assert "aria-current=\"true\">Newest" in site.get("/?sort=date").text


def test_prev_next_skip_days_without_papers(site):
    conn = connect(site.db)
    days = [r[0] for r in conn.execute("SELECT DISTINCT feed_date FROM papers WHERE feed_date LIKE '2007-%' ORDER BY 1")]
    # A day in the middle with no papers at all still links to the adjacent days that have some.
    r = site.get("/papers/date/2007-04-01")
    before = [d for d in days if d < "2007-04-01"]
    after = [d for d in days if d > "2007-04-01"]
    if before:
        assert f'rel="prev" href="/papers/date/{before[-1]}"' in r.text
    assert f'rel="next" href="/papers/date/{after[0]}"' in r.text


def test_weekly_and_monthly_views(site):
    conn = connect(site.db)
    n_month = conn.execute("SELECT COUNT(*) FROM papers WHERE feed_date LIKE '2007-04-%' AND hidden=0").fetchone()[0]
    r = site.get("/papers/month/2007-04")
    assert r.status_code == 200 and _count(r.text) == n_month
    n_week = conn.execute(
        "SELECT COUNT(*) FROM papers WHERE feed_date BETWEEN '2007-04-09' AND '2007-04-15'").fetchone()[0]
    r = site.get("/papers/week/2007-W15")
    assert _count(r.text) == n_week and "Apr 9" in r.text
    for bad in ("/papers/date/2007-02-30", "/papers/week/2007-W60", "/papers/month/2007-13", "/papers/date/<script>"):
        r = site.get(bad)
        assert r.status_code == 422 and "<script>" not in r.text


def test_paper_page_has_everything(site):
    r = site.get("/papers/0704.0001")
    assert r.status_code == 200
    html = r.text
    for needle in ("arxiv.org/abs/0704.0001", "arxiv.org/pdf/0704.0001", "BibTeX", "@", "Similar papers",
                   "Submitted by", 'href="/authors/'):
        assert needle in html, needle
    assert "0704.0001" in site.get("/papers/0704.0001.bib").text
    # similar papers: at least one link to another paper
    sim = html.split("Similar papers", 1)[1]
    assert re.search(r'href="/papers/(?!0704\.0001)[^"]+"', sim)
    # versioned ids redirect to the canonical page
    r = site.get("/papers/0704.0001v1", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/papers/0704.0001"
    assert site.get("/papers/does-not-exist").status_code == 404


def test_author_page_lists_their_papers(site):
    conn = connect(site.db)
    name = conn.execute("SELECT name FROM paper_authors GROUP BY name_norm ORDER BY COUNT(*) DESC LIMIT 1").fetchone()[0]
    n = conn.execute("SELECT COUNT(DISTINCT paper) FROM paper_authors WHERE name=?", (name,)).fetchone()[0]
    from urllib.parse import quote

    r = site.get("/authors/" + quote(name, safe=""))
    assert r.status_code == 200 and f"{n} paper" in r.text
    assert site.get("/authors/Nobody%20At%20All").status_code == 404


def test_hostile_text_is_escaped_everywhere(site):
    pages = [site.get(f"/papers/{HOSTILE_ID}").text, site.get("/papers/date/2007-04-16?sort=date").text,
             site.get("/search?q=robust+learning").text]
    for html in pages:
        assert "<script>window" not in html
        assert "<img src=x" not in html and "<iframe" not in html and "<b>bold" not in html
    paper = pages[0]
    assert "&lt;script&gt;window.__pwned" in paper
    assert "$E = mc^2$" in paper  # LaTeX left as text for KaTeX
    assert "Mallory &lt;b&gt;Evil&lt;/b&gt;" in paper


def test_security_headers(site):
    r = site.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "cdn" not in r.text.lower() and "https://" not in re.sub(r'href="https://[^"]*"', "", r.text)


def test_signup_login_logout_with_csrf(site):
    # no CSRF token: refused
    r = site.post("/signup", data={"username": "bob", "email": "b@example.org", "password": "x" * 10})
    assert r.status_code == 403
    r = signup(site, "alice")
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("pw_session="))
    assert "HttpOnly" in session and "samesite=lax" in session.lower() and "Secure" not in session
    home = site.get("/")
    assert "alice" in home.text and "Sign out" in home.text
    # sign out needs the token too
    assert site.post("/logout", data={}).status_code == 403
    r = site.post("/logout", data={"csrf_token": csrf_from(home.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert "Sign in" in site.get("/").text
    # the old session token is dead server-side
    conn = connect(site.db)
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    # sign in again, wrong then right password
    page = site.get("/login")
    tok = csrf_from(page.text)
    assert site.post("/login", data={"login": "alice", "password": "wrong password", "csrf_token": tok}).status_code == 401
    r = site.post("/login", data={"login": "ALICE@example.org", "password": "correct horse battery",
                                  "csrf_token": tok, "next": "//evil.example/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    stored = conn.execute("SELECT password_hash FROM users WHERE username='alice'").fetchone()[0]
    assert stored.startswith("$argon2id$")


def test_signup_validation_and_duplicates(site):
    signup(site, "carol")
    site.cookies.clear()
    page = site.get("/signup")
    tok = csrf_from(page.text)
    r = site.post("/signup", data={"username": "carol", "email": "other@example.org", "password": "longenough1",
                                   "csrf_token": tok})
    assert r.status_code == 422 and "already taken" in r.text
    r = site.post("/signup", data={"username": "<script>", "email": "x@example.org", "password": "longenough1",
                                   "csrf_token": tok})
    assert r.status_code == 422 and "<script>" not in r.text.split("<main", 1)[1]
    r = site.post("/signup", data={"username": "dave", "email": "dave@example.org", "password": "short",
                                   "csrf_token": tok})
    assert r.status_code == 422 and "at least 8" in r.text


def test_secure_cookies_on_https(tmp_path):
    with make_client(demo_db(tmp_path), base_url="https://papers.example.org") as client:
        r = signup(client, "erin")
        session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("pw_session="))
        assert "Secure" in session
        assert "max-age" in client.get("/").headers["strict-transport-security"]


def test_login_is_rate_limited(site):
    tok = csrf_from(site.get("/login").text)
    codes = [site.post("/login", data={"login": "nobody", "password": "wrong password", "csrf_token": tok}).status_code
             for _ in range(12)]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    r = site.post("/login", data={"login": "nobody", "password": "x", "csrf_token": tok})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_upvote_once_per_user_and_undo(site):
    signup(site, "voter")
    conn = connect(site.db)
    before = conn.execute("SELECT upvotes + local_upvotes FROM papers WHERE paper_id='0704.0002'").fetchone()[0]
    page = site.get("/papers/0704.0002")
    tok = csrf_from(page.text)
    assert site.post("/papers/0704.0002/upvote", data={"action": "up"}).status_code == 403  # no CSRF
    for _ in range(2):  # twice: still one vote
        r = site.post("/papers/0704.0002/upvote", data={"csrf_token": tok, "action": "up"}, follow_redirects=False)
        assert r.status_code == 303
    row = conn.execute("SELECT local_upvotes, upvotes + local_upvotes FROM papers WHERE paper_id='0704.0002'").fetchone()
    assert row[1] == before + 1
    assert row[0] == conn.execute("SELECT COUNT(*) FROM votes v JOIN papers p ON p.id=v.paper "
                                  "WHERE p.paper_id='0704.0002'").fetchone()[0]
    page = site.get("/papers/0704.0002")
    assert 'aria-pressed="true"' in page.text
    site.post("/papers/0704.0002/upvote", data={"csrf_token": tok, "action": "down"})
    assert conn.execute("SELECT upvotes + local_upvotes FROM papers WHERE paper_id='0704.0002'").fetchone()[0] == before
    # anonymous: sent to sign in
    site.cookies.delete("pw_session")
    r = site.post("/papers/0704.0002/upvote", data={"csrf_token": tok}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_cached_pages_see_votes_immediately(site):
    anon = site.get("/papers/0704.0003")
    etag = anon.headers["etag"]
    assert site.get("/papers/0704.0003", headers={"If-None-Match": etag}).status_code == 304
    signup(site, "fan")
    tok = csrf_from(site.get("/papers/0704.0003").text)
    site.post("/papers/0704.0003/upvote", data={"csrf_token": tok})
    site.cookies.delete("pw_session")
    again = site.get("/papers/0704.0003", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag


def test_submit_known_unknown_and_invalid(site):
    assert site.get("/submit", follow_redirects=False).status_code == 303  # sign in first
    signup(site, "submitter")
    tok = csrf_from(site.get("/submit").text)
    r = site.post("/submit", data={"arxiv_id": "https://arxiv.org/abs/0704.0004v1", "csrf_token": tok},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/papers/0704.0004"
    conn = connect(site.db)
    assert conn.execute("SELECT submitted_by FROM papers WHERE paper_id='0704.0004'").fetchone()[0] == "submitter"
    assert "submitter" in site.get("/papers/0704.0004").text
    r = site.post("/submit", data={"arxiv_id": "2501.00001", "csrf_token": tok})
    assert r.status_code == 200 and "queued" in r.text
    assert conn.execute("SELECT status FROM submissions WHERE arxiv_id='2501.00001'").fetchone()[0] == "queued"
    r = site.post("/submit", data={"arxiv_id": "not an id <b>", "csrf_token": tok})
    assert r.status_code == 422 and "<b>" not in r.text.split("<main", 1)[1]
    # once the harvester has fetched it, the page credits the submitter
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord

    import_records(conn, [PaperRecord(title="A submitted paper", arxiv_id="2501.00001", source="test",
                                      published="2025-01-01T00:00:00Z")])
    conn.execute("UPDATE submissions SET status='done' WHERE arxiv_id='2501.00001'")
    site.cookies.delete("pw_session")
    assert "<dd>submitter</dd>" in site.get("/papers/2501.00001").text


def test_admin_can_hide_a_paper(site):
    signup(site, "mod")
    tok = csrf_from(site.get("/papers/0704.0005").text)
    assert site.post("/papers/0704.0005/hide", data={"csrf_token": tok}).status_code == 403
    conn = connect(site.db)
    conn.execute("UPDATE users SET is_admin=1 WHERE username='mod'")
    r = site.post("/papers/0704.0005/hide", data={"csrf_token": tok, "action": "hide"}, follow_redirects=False)
    assert r.status_code == 303
    assert "only admins can see it" in site.get("/papers/0704.0005").text
    site.cookies.delete("pw_session")
    assert site.get("/papers/0704.0005").status_code == 404
    assert site.get("/api/papers/0704.0005").status_code == 404
    ids = [x["paper"]["id"] for x in site.get("/api/daily_papers?month=2007-04&limit=100&p=0").json()]
    assert "0704.0005" not in ids


def test_search_page_highlights_filters_and_paginates(site):
    r = site.get("/search?q=quantum")
    assert r.status_code == 200
    assert "<mark>" in r.text
    total = int(re.search(r"(\d+) results? \(exact\) for", r.text).group(1))
    assert total > 20
    assert 'rel="next"' in r.text
    p2 = site.get("/search?q=quantum&page=2")
    assert p2.status_code == 200 and "Page 2 of" in p2.text
    # filters
    r = site.get("/search?q=&category=math.AG")
    assert r.status_code == 200 and re.search(r"[0-9,]+\+? results? \((exact|at least [0-9,]+)\) for", r.text)
    # bad input: a friendly message, not a crash
    # an over-long query is cut to 250 characters with a note (issue 14); the API refuses it
    r = site.get("/search?q=" + "x" * 300)
    assert r.status_code == 200 and "cut to 250 characters" in r.text
    assert site.get("/api/papers/search?q=" + "x" * 300).status_code == 422
    assert site.get("/search").status_code == 200


def test_pages_answer_json(site):
    home = site.get("/?format=json").json()
    assert home["total"] == 229 and len(home["papers"]) == 30 and home["previous"] == "2026-03-14"
    paper = site.get("/papers/0704.0001?format=json").json()
    assert paper["id"] == "0704.0001" and "similar" in paper
    s = site.get("/search?q=quantum&format=json").json()
    assert s["total"] > 0 and s["results"][0]["paper"]["id"]
    assert site.get("/trending?format=json").json()["papers"]


def test_page_cache_is_bounded_by_entries_and_bytes():
    from paperwire.web.context import PageCache

    cache = PageCache(maxsize=10, max_bytes=100)
    for i in range(20):
        cache.put(i, (b"x" * 10, "text/html", '"e"', {}, None))
    assert len(cache._data) == 10 and cache.bytes == 100 and cache.get(0) is None and cache.get(19)
    cache.put("big", (b"x" * 60, "text/html", '"e"', {}, None))  # over 1/8 of the budget: not cached
    assert cache.get("big") is None and cache.bytes == 100
