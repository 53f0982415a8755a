"""The For-you pages, forms, JSON API, Atom feed and mail links through the real app;
and the whole flow in Debian's headless Chromium."""

from __future__ import annotations

import os
import re

import pytest

from paperwire.recommend import engine, mail_links
from paperwire.store.db import connect
from recommend_support import build, paper_id
from web_support import SECRET, csrf_from, live_server, make_client, signup

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def db(tmp_path):
    engine.clear_cache()
    path = tmp_path / "site.db"
    c = connect(path)
    build(c)
    c.close()
    return path


def _save(client, pid, csrf):
    r = client.post("/library/save", data={"paper": pid, "action": "save", "next": "/", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303


def _user_id(db, name="alice"):
    c = connect(db)
    try:
        return c.execute("SELECT id FROM users WHERE username=?", (name,)).fetchone()[0]
    finally:
        c.close()


def test_foryou_page_feedback_undo_and_csrf(db):
    with make_client(db) as client:
        assert client.get("/for-you", follow_redirects=False).status_code == 303  # sign in first
        signup(client)
        page = client.get("/for-you")
        assert page.status_code == 200 and "Pick a few topics" in page.text
        csrf = csrf_from(page.text)
        for i in range(3):
            _save(client, paper_id("galaxies", i), csrf)
        page = client.get("/for-you?window=week")
        assert "Why this?" in page.text and "which you saved" in page.text
        first = re.findall(r'class="pick" data-paper="([^"]+)"', page.text)
        assert first and all(p.startswith("2501.2") for p in first[:9])
        # CSRF is checked before anything is written.
        bad = client.post("/for-you/feedback", data={"paper": first[0], "csrf_token": "nope"}, follow_redirects=False)
        assert bad.status_code == 403
        assert first[0] in re.findall(r'class="pick" data-paper="([^"]+)"', client.get("/for-you").text)
        r = client.post("/for-you/feedback", data={"paper": first[0], "kind": "not_interested", "next": "/for-you",
                                                   "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303 and "dismissed=" in r.headers["location"]
        page = client.get(r.headers["location"])
        assert "Undo" in page.text
        assert first[0] not in re.findall(r'class="pick" data-paper="([^"]+)"', page.text)
        client.post("/for-you/feedback", data={"paper": first[0], "kind": "not_interested", "action": "undo",
                                               "next": "/for-you", "csrf_token": csrf})
        assert first[0] in re.findall(r'class="pick" data-paper="([^"]+)"', client.get("/for-you").text)


def test_api_for_you_feedback_follows(db):
    with make_client(db) as client:
        assert client.get("/api/v1/for-you").status_code == 401
        signup(client)
        token = client.get("/api/v1/csrf").json()["csrfToken"]
        h = {"X-CSRF-Token": token}
        assert client.post("/api/v1/follows", json={"kind": "category", "value": "cs.LG"}).status_code == 403
        r = client.post("/api/v1/follows", json={"kind": "category", "value": "cs.LG"}, headers=h)
        assert r.status_code == 200 and r.json()["follows"][0]["value"] == "cs.LG"
        assert client.post("/api/v1/follows", json={"kind": "category", "value": "<x>"}, headers=h).status_code == 422
        hits = client.get("/api/v1/for-you?window=week&limit=5").json()["hits"]
        assert len(hits) == 5 and all(h_["id"].startswith("2501.1") and "cs.LG" in h_["why"] for h_ in hits)
        assert client.post("/api/v1/feedback", json={"paper": hits[0]["id"]}).status_code == 403
        r = client.post("/api/v1/feedback", json={"paper": hits[0]["id"]}, headers=h)
        assert r.json()["changed"] is True
        again = client.get("/api/v1/for-you?window=week&limit=50").json()["hits"]
        assert hits[0]["id"] not in [x["id"] for x in again]
        assert client.post("/api/v1/feedback", json={"paper": "nope"}, headers=h).status_code == 404
        assert client.get("/api/v1/for-you?window=year").status_code == 422
        assert client.get("/api/v1/follows").json()["follows"][0]["kind"] == "category"
        assert len(client.get("/api/v1/for-you/to-rate").json()["papers"]) == 10


def test_follow_buttons_on_paper_and_author_pages(db):
    with make_client(db) as client:
        signup(client)
        page = client.get(f"/papers/{paper_id('graphs', 1)}")
        assert "Follow cs.LG" in page.text and "Follow Graphs Author1" in page.text
        csrf = csrf_from(page.text)
        r = client.post("/follow", data={"kind": "author", "value": "Graphs Author1", "next": "/authors/Graphs%20Author1",
                                         "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert "Following Graphs Author1" in client.get("/authors/Graphs%20Author1").text
        assert client.post("/follow", data={"kind": "author", "value": "x", "csrf_token": "bad"}).status_code == 403
        assert client.post("/for-you/topics", data={"category": "cs.LG", "csrf_token": "bad"}).status_code == 403
        assert client.post("/for-you/feed-token", data={"action": "new", "csrf_token": "bad"}).status_code == 403
        topics = client.get("/for-you/topics")
        assert "Machine Learning (cs.LG)" in topics.text and "Graphs Author1" in topics.text
        r = client.post("/for-you/topics", data={"category": ["q-bio.BM", "cs.LG"], "keywords": "dark matter",
                                                 "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        kinds = sorted(f["kind"] for f in client.get("/api/v1/follows").json()["follows"])
        assert kinds == ["author", "category", "category", "keyword"]


def test_private_atom_feed_and_revoke(db):
    with make_client(db) as client:
        signup(client)
        csrf = csrf_from(client.get("/for-you").text)
        page = client.post("/for-you/feed-token", data={"action": "new", "csrf_token": csrf})
        url = re.search(r'value="(http[^"]+\.atom)"', page.text).group(1)
        path = url.split("testserver", 1)[-1] if "testserver" in url else "/" + url.split("/", 3)[3]
        feed = client.get(path)
        assert feed.status_code == 200 and "<feed" in feed.text
        with make_client(db) as stranger:  # no session: the token is the credential
            assert stranger.get(path).status_code == 200
            assert stranger.get("/for-you/feed/guess.atom").status_code == 404
        client.post("/for-you/feed-token", data={"action": "revoke", "csrf_token": csrf})
        assert client.get(path).status_code == 404


def test_mail_links_confirm_with_post(db):
    with make_client(db) as client:
        signup(client)
        uid = _user_id(db)
    links = mail_links.action_links(SECRET, "http://testserver", uid, paper_id("proteins", 4))
    with make_client(db) as anon:  # a mail client: no session, no CSRF cookie
        path = links["not_interested"].split("testserver", 1)[1]
        page = anon.get(path)
        assert page.status_code == 200 and "<form" in page.text
        c = connect(db)
        assert c.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0  # a GET changes nothing
        token = path.split("token=", 1)[1]
        from urllib.parse import unquote

        done = anon.post("/for-you/mail", data={"token": unquote(token)})
        assert done.status_code == 200 and "Done" in done.text
        assert c.execute("SELECT kind FROM feedback").fetchone()[0] == "not_interested"
        save = links["save"].split("testserver", 1)[1].split("token=", 1)[1]
        anon.post("/for-you/mail", data={"token": unquote(save)})
        assert c.execute("SELECT source FROM library_items").fetchone()[0] == "mail"
        c.close()
        assert anon.post("/for-you/mail", data={"token": "forged"}).status_code == 400


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_browser_topics_saves_dismiss_undo(db):
    sync_api = pytest.importorskip("playwright.sync_api")
    with live_server(db) as url, sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
        page = b.new_page()
        page.goto(url + "/signup")
        page.fill("input[name=username]", "bob")
        page.fill("input[name=email]", "bob@example.org")
        page.fill("input[name=password]", "correct horse battery")
        page.click("form[action='/signup'] button[type=submit]")
        page.goto(url + "/for-you/topics")
        page.check("input[name=category][value='astro-ph.GA']")
        page.check("input[name=category][value='cs.LG']")
        page.click("form.topics-form button[type=submit]")
        page.wait_for_url(url + "/for-you")
        for i in range(3):
            page.goto(url + f"/papers/{paper_id('galaxies', i)}")
            page.click("form.save-form button")
            page.wait_for_timeout(300)
        page.goto(url + "/for-you?window=week")
        picks = page.locator(".pick").evaluate_all("els => els.map(e => e.dataset.paper)")
        assert picks[:9] and all(p.startswith("2501.2") for p in picks[:9]), picks
        assert "which you saved" in page.locator(".pick .why").first.inner_text()
        gone = picks[0]
        page.locator(f".pick[data-paper='{gone}'] .not-interested-btn").click()
        page.wait_for_selector(".undo-notice")
        after = page.locator(".pick").evaluate_all("els => els.map(e => e.dataset.paper)")
        assert gone not in after
        page.locator(".undo-notice button").click()
        page.wait_for_load_state()
        back = page.locator(".pick").evaluate_all("els => els.map(e => e.dataset.paper)")
        assert gone in back
        # The same on the home feed: every card has the button; the paper goes, Undo brings it back.
        page.goto(url + "/")
        cards = page.locator("article.card")
        assert cards.count() >= 3 and page.locator("article.card .not-interested-btn").count() == cards.count()
        home = page.locator("article.card .not-interested-btn").evaluate_all("els => els.map(e => e.dataset.paper)")
        page.locator(f"article.card .not-interested-btn[data-paper='{home[0]}']").click()
        page.wait_for_selector(".undo-notice")
        shown = page.locator("article.card .not-interested-btn").evaluate_all("els => els.map(e => e.dataset.paper)")
        assert home[0] not in shown and page.locator(".hidden-note").count() == 1
        page.locator(".undo-notice button").click()
        page.wait_for_load_state()
        assert page.locator(".undo-notice").count() == 0
        shown = page.locator("article.card .not-interested-btn").evaluate_all("els => els.map(e => e.dataset.paper)")
        assert shown == home
        b.close()


def _card_ids(html: str) -> list[str]:
    return re.findall(r'<h2 class="card-title">.*?<a class="math-text" href="/papers/([^"]+)"', html)


def _dismiss_buttons(html: str) -> dict[str, str]:
    """paper id -> the label of its card's not-interested button."""
    return dict(re.findall(r'not-interested-btn" data-paper="([^"]+)">([^<]+)</button>', html))


def test_not_interested_on_any_card_hides_from_feeds_with_undo(db):
    with make_client(db) as anon, make_client(db) as client:
        before = anon.get("/").text
        home_ids = _card_ids(before)
        assert len(home_ids) >= 3 and not _dismiss_buttons(before)  # signed out: no button, shared cached page
        signup(client)
        page = client.get("/")
        csrf = csrf_from(page.text)
        buttons = _dismiss_buttons(page.text)
        assert set(buttons) == set(_card_ids(page.text)) == set(home_ids)  # one per card
        assert set(buttons.values()) == {"Not interested"}
        gone = home_ids[1]
        title = re.search(r'href="/papers/' + re.escape(gone) + r'">([^<]+)</a>', page.text).group(1)
        search = client.get("/search", params={"q": title})
        assert gone in _card_ids(search.text) and _dismiss_buttons(search.text)[gone] == "Not interested"
        paper = client.get(f"/papers/{gone}")
        assert _dismiss_buttons(paper.text) == {gone: "Not interested"}
        day = re.search(r'href="(/papers/date/[0-9-]+)"', page.text)
        trending = client.get("/trending").text
        assert gone in _card_ids(trending)

        r = client.post("/for-you/feedback", data={"paper": gone, "kind": "not_interested", "next": "/?sort=new",
                                                   "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/?sort=new&dismissed={gone}"
        page = client.get(r.headers["location"])
        assert gone not in _card_ids(page.text) and 'class="notice undo-notice"' in page.text
        assert "1 paper you marked not interested is hidden here" in page.text
        assert gone not in _card_ids(client.get("/").text)
        assert gone not in [p["paper"]["id"] for p in client.get("/?format=json").json()["papers"]]
        assert gone not in _card_ids(client.get("/trending").text)
        if day:
            assert gone not in _card_ids(client.get(day.group(1)).text)
        # Search still finds it, with the undo on its card; the hidden list has it too.
        search = client.get("/search", params={"q": title})
        assert gone in _card_ids(search.text) and _dismiss_buttons(search.text)[gone] == "Undo not interested"
        assert _dismiss_buttons(client.get(f"/papers/{gone}").text) == {gone: "Undo not interested"}
        hidden = client.get("/for-you/hidden").text
        assert _card_ids(hidden) == [gone] and "1 in all" in hidden
        # Other readers, and the anonymous page, are unaffected.
        assert gone in _card_ids(anon.get("/").text)

        undo = re.search(r'<div class="notice undo-notice".*?</div>', page.text, re.S).group(0)
        assert f'name="paper" value="{gone}"' in undo and 'name="action" value="undo"' in undo
        r = client.post("/for-you/feedback", data={"paper": gone, "kind": "not_interested", "action": "undo",
                                                   "next": f"/?sort=new&dismissed={gone}", "csrf_token": csrf},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/?sort=new"
        page = client.get(r.headers["location"])
        assert gone in _card_ids(page.text) and "undo-notice" not in page.text and "hidden-note" not in page.text
        assert gone in _card_ids(client.get("/").text)
        assert _card_ids(client.get("/for-you/hidden").text) == []
        # A forged dismissal (no CSRF token) writes nothing.
        bad = client.post("/for-you/feedback", data={"paper": gone, "kind": "not_interested", "next": "/"},
                          follow_redirects=False)
        assert bad.status_code == 403 and gone in _card_ids(client.get("/").text)
