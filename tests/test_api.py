"""The JSON API: HF-shaped endpoints, our /api/v1 extras, errors (422/404, never 500), feeds, docs."""

from __future__ import annotations

import feedparser
import pytest

from paperwire.store.db import connect
from web_support import HOSTILE_ID, demo_db, make_client, signup


@pytest.fixture
def api(tmp_path):
    db = demo_db(tmp_path)
    with make_client(db) as client:
        client.db = db
        yield client


def test_daily_papers_by_date_week_month(api):
    conn = connect(api.db)
    n = conn.execute("SELECT COUNT(*) FROM papers WHERE feed_date='2007-04-15'").fetchone()[0]
    items = api.get("/api/daily_papers", params={"date": "2007-04-15", "limit": 100}).json()
    assert 0 < len(items) == n
    first = items[0]
    assert set(first) >= {"paper", "publishedAt", "title", "summary", "numComments", "submittedBy"}
    assert set(first["paper"]) >= {"id", "title", "summary", "authors", "publishedAt", "upvotes"}
    assert all(x["paper"]["feedDate"] == "2007-04-15" for x in items)
    assert first["paper"]["authors"][0]["name"]
    # newest first by default
    stamps = [x["paper"]["publishedAt"] for x in items]
    assert stamps == sorted(stamps, reverse=True)
    week = api.get("/api/daily_papers", params={"week": "2007-W15", "limit": 100}).json()
    assert week and all("2007-04-09" <= x["paper"]["feedDate"] <= "2007-04-15" for x in week)
    month = api.get("/api/daily_papers", params={"month": "2007-04", "limit": 100, "p": 1}).json()
    assert len(month) == 100 and all(x["paper"]["feedDate"].startswith("2007-04") for x in month)
    # default: the newest papers
    latest = api.get("/api/daily_papers").json()
    assert len(latest) == 50


def test_daily_papers_paging_and_trending_sort(api):
    conn = connect(api.db)
    conn.execute("UPDATE papers SET upvotes=50 WHERE paper_id='0704.1843'")
    top = api.get("/api/daily_papers", params={"date": "2007-04-13", "sort": "trending", "limit": 3}).json()
    assert top[0]["paper"]["id"] == "0704.1843" and top[0]["paper"]["upvotes"] == 50
    p0 = api.get("/api/daily_papers", params={"date": "2007-04-13", "limit": 5, "p": 0}).json()
    p1 = api.get("/api/daily_papers", params={"date": "2007-04-13", "limit": 5, "p": 1}).json()
    assert len(p0) == len(p1) == 5
    assert not {x["paper"]["id"] for x in p0} & {x["paper"]["id"] for x in p1}
    assert api.get("/api/daily_papers", params={"date": "1999-01-01"}).json() == []


@pytest.mark.parametrize("params, status", [
    ({"limit": 0}, 422), ({"limit": 101}, 422), ({"limit": "many"}, 422), ({"p": -1}, 422), ({"sort": "votes"}, 422),
    # A bad date/week/month is 400, as on HF (huggingface_hub raises BadRequestError): issue 12.
    ({"date": "2007-13-01"}, 400), ({"date": "yesterday"}, 400), ({"week": "2007-W99"}, 400), ({"month": "2007-4"}, 400),
    ({"date": "2007-04-13", "week": "2007-W15"}, 400), ({"date": "2" * 500}, 400),
])
def test_daily_papers_bad_params_are_4xx_with_a_message(api, params, status):
    r = api.get("/api/daily_papers", params=params)
    assert r.status_code == status
    assert isinstance(r.json()["error"], str) and r.json()["error"]


def test_paper_info_and_404(api):
    r = api.get("/api/papers/0704.0001")
    assert r.status_code == 200
    p = r.json()
    assert p["id"] == "0704.0001" and p["title"] and p["summary"] and p["authors"][0]["name"]
    assert p["publishedAt"].endswith("Z") and isinstance(p["upvotes"], int)
    assert api.get("/api/papers/0704.0001v2").json()["id"] == "0704.0001"
    r = api.get("/api/papers/9999.99999")
    assert r.status_code == 404 and r.json()["error"]
    hostile = api.get(f"/api/papers/{HOSTILE_ID}").json()
    assert "<script>" in hostile["summary"]  # JSON carries text as is; HTML escaping is the page's job
    assert api.get(f"/api/papers/{HOSTILE_ID}").headers["content-type"].startswith("application/json")


def test_json_bodies_carry_unicode_exactly(api):
    import json

    conn = connect(api.db)
    pid, title, authors = next((r[0], r[1], r[2]) for r in conn.execute(
        "SELECT paper_id, title, authors FROM papers WHERE hidden=0 ORDER BY id") if not (r[1] + r[2]).isascii())
    r = api.get(f"/api/papers/{pid}")
    assert r.headers["content-type"] == "application/json"
    body = json.loads(r.content.decode("utf-8"))  # strict UTF-8, no lone surrogates
    assert body["title"] == title
    assert [a["name"] for a in body["authors"]] == json.loads(authors)


def test_search_api(api):
    r = api.get("/api/papers/search", params={"q": "quantum", "limit": 5})
    assert r.status_code == 200
    items = r.json()
    assert 1 <= len(items) <= 5
    assert all("quantum" in (x["title"] + x["summary"]).lower() for x in items)
    assert "<mark>" in items[0]["snippet"]
    assert int(r.headers["x-total-count"]) >= len(items)
    assert api.get("/api/papers/search", params={"q": "x" * 251}).status_code == 422
    assert api.get("/api/papers/search", params={"q": "x" * 250}).status_code == 200
    assert api.get("/api/papers/search", params={"q": "quantum", "limit": 0}).status_code == 422
    assert api.get("/api/papers/search", params={"q": "zzzyzzyqqq"}).json() == []
    # no query: newest papers, like HF
    assert len(api.get("/api/papers/search").json()) == 50


def test_never_500_on_odd_input(api):
    odd = ["'", '"', "\\", "%", "*", "(", ")", "NEAR(", "AND", "-", ":", "author:", "cat:", "year:abcd",
           "\x00", "😀", "<script>", "a" * 250, "title:foo OR", "\"unclosed", "^", "{}"]
    for q in odd:
        for url in ("/api/papers/search", "/search", "/feeds/search.atom"):
            r = api.get(url, params={"q": q})
            assert r.status_code < 500, (url, q, r.status_code)
    for path in ("/api/papers/%00", "/api/papers/..%2F..%2Fetc", "/papers/%3Cscript%3E", "/authors/%00",
                 "/papers/date/0000-00-00", "/api/v1/papers/nope/similar", "/papers/x" * 50):
        assert api.get(path).status_code in (404, 422), path


def test_v1_similar_upvote_and_submissions(api):
    sims = api.get("/api/v1/papers/0704.0001/similar", params={"limit": 3}).json()
    assert 1 <= len(sims) <= 3 and all(s["paper"]["id"] != "0704.0001" for s in sims)
    assert api.get("/api/v1/papers/nope/similar").status_code == 404
    # writes need a session and the CSRF header
    assert api.post("/api/v1/papers/0704.0001/upvote", json={"up": True}).status_code == 403
    token = api.get("/api/v1/csrf").json()["csrfToken"]
    assert api.post("/api/v1/papers/0704.0001/upvote", json={"up": True},
                    headers={"X-CSRF-Token": token}).status_code == 401
    signup(api, "apiuser")
    token = api.get("/api/v1/csrf").json()["csrfToken"]
    h = {"X-CSRF-Token": token}
    r = api.post("/api/v1/papers/0704.0001/upvote", json={"up": True}, headers=h)
    assert r.status_code == 200 and r.json() == {"paper": "0704.0001", "voted": True, "upvotes": 1}
    assert api.post("/api/v1/papers/0704.0001/upvote", json={"up": True}, headers=h).json()["upvotes"] == 1
    assert api.get("/api/papers/0704.0001").json()["upvotes"] == 1
    assert api.post("/api/v1/papers/0704.0001/upvote", json={"up": False}, headers=h).json()["upvotes"] == 0
    r = api.post("/api/v1/submissions", json={"arxiv_id": "2502.00002"}, headers=h)
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert api.post("/api/v1/submissions", json={"arxiv_id": "0704.0001"}, headers=h).json()["status"] == "known"
    assert api.post("/api/v1/submissions", json={"arxiv_id": "bogus"}, headers=h).status_code == 422
    assert [s["arxiv_id"] for s in api.get("/api/v1/submissions").json()] == ["2502.00002"]


def test_trending_extra_and_json_of_pages(api):
    conn = connect(api.db)
    conn.execute("UPDATE papers SET upvotes=99 WHERE paper_id='0704.0010'")
    top = api.get("/api/v1/trending", params={"limit": 5}).json()
    assert top and all("trendingScore" in x for x in top)


def test_atom_feeds_parse_cleanly(api):
    for url in ("/feeds/daily.atom", "/feeds/trending.atom", "/feeds/search.atom?q=quantum",
                "/feeds/search.atom?q=robust"):
        r = api.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(r.content)
        assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
        assert parsed.entries and parsed.entries[0].title and parsed.entries[0].link
    hostile = feedparser.parse(api.get("/feeds/search.atom?q=robust").content)
    entry = next(e for e in hostile.entries if HOSTILE_ID in e.link)
    assert "<script>" not in entry.summary or entry.summary_detail.type == "text/plain"
    assert api.get("/feeds/search.atom?q=").status_code == 422


def test_openapi_and_offline_docs(api):
    spec = api.get("/openapi.json").json()
    assert "/api/daily_papers" in spec["paths"] and "/api/papers/search" in spec["paths"]
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert api.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert api.get("/static/katex/katex.min.js").status_code == 200


def test_concurrent_identical_searches_run_the_engine_once(api, monkeypatch):
    import threading
    import time

    from paperwire.web import searching

    calls = []
    real = searching.run_search

    def slow(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(searching, "run_search", slow)
    codes = []
    threads = [threading.Thread(target=lambda: codes.append(api.get("/api/papers/search?q=neutrino+mass").status_code))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6 and len(calls) == 1
