"""The site as a person uses it, in Debian's headless Chromium (Playwright, no browser download).

Screenshots go to artifacts/screenshots/ for a human to look at.
"""

from __future__ import annotations

import os

import pytest

from browser_support import CHROMIUM, Watch, _shot
from web_support import HOSTILE_ID, HOSTILE_TITLE, demo_db, live_server


pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")]


@pytest.fixture
def site(tmp_path):
    with live_server(demo_db(tmp_path)) as url:
        yield url


def test_feed_paper_signup_upvote_search_similar(browser, site):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(site + "/")
    assert page.locator("h1").first.inner_text() == "Daily papers"
    assert page.locator("article.card").count() == 30
    _shot(page, "home-desktop.png")

    # previous day, then back
    assert page.locator("a[rel=prev]").first.inner_text() == "← Mar 14, 2026"  # names the day it goes to
    page.click("a[rel=prev]")
    assert "/papers/date/2026-03-14" in page.url
    assert page.locator("article.card").count() > 0
    page.click("a.seg-week, .seg a:has-text('Weekly')")
    assert "/papers/week/" in page.url

    # open a paper from the feed
    page.goto(site + "/papers/date/2007-04-16?sort=date")
    first = page.locator("article.card h2 a").first
    title = first.inner_text()
    first.click()
    page.wait_for_selector("h1.paper-title")
    assert page.locator("h1.paper-title").inner_text() == title
    assert page.locator(".paper-authors a").count() > 0
    assert page.locator("a:has-text('PDF')").count() == 1
    paper_url = page.url

    # sign up (from the upvote button), come back, upvote with the JS path, undo, redo
    page.click(".paper-head .vote-btn")
    assert "/login" in page.url
    page.click("text=Sign up")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=email]", "reader@example.org")
    page.fill("input[name=password]", "a long enough password")
    _shot(page, "signup.png")
    page.click("button:has-text('Sign up')")
    page.wait_for_url(paper_url)
    assert page.locator(".who").inner_text().startswith("reader")
    count = page.locator(".paper-head .vote-btn .count")
    before = int(count.inner_text())
    page.click(".paper-head .vote-btn")
    page.wait_for_function(f"document.querySelector('.paper-head .vote-btn .count').textContent == '{before + 1}'")
    assert page.locator(".paper-head .vote-btn").get_attribute("aria-pressed") == "true"
    page.reload()
    assert int(page.locator(".paper-head .vote-btn .count").inner_text()) == before + 1
    _shot(page, "paper-upvoted.png")

    # follow a similar paper
    sim = page.locator(".similar-list a").first
    sim_title = sim.inner_text()
    sim.click()
    page.wait_for_selector("h1.paper-title")
    assert page.locator("h1.paper-title").inner_text() == sim_title
    assert page.url != paper_url

    # search from the top bar
    page.fill(".topsearch input", "quantum entanglement")
    page.keyboard.press("Enter")
    page.wait_for_selector(".result-line")
    assert page.locator("article.card").count() > 0
    assert page.locator(".snippet mark").count() > 0
    _shot(page, "search.png")
    if page.locator("a[rel=next]").count():
        page.click("a[rel=next]")
        assert "page=2" in page.url
    assert watch.problems == [] and watch.dialogs == []
    ctx.close()


def test_hostile_abstract_runs_no_script_and_math_renders(browser, site):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(f"{site}/papers/{HOSTILE_ID}")
    page.wait_for_selector("html.math-ready")
    assert page.evaluate("window.__pwned") is None
    assert page.title() == HOSTILE_TITLE + " · paperwire"  # the payload would have set "PWNED"
    assert watch.dialogs == []
    # the payload is visible as text
    assert "<script>window.__pwned" in page.locator(".abstract").inner_text()
    # KaTeX typeset $E = mc^2$
    assert page.locator(".abstract .katex").count() >= 2
    assert page.locator(".abstract img, .abstract iframe, .abstract script").count() == 0
    _shot(page, "hostile-paper.png")
    # also in the lists
    page.goto(f"{site}/search?q=robust+learning")
    page.goto(f"{site}/papers/date/2007-04-16?sort=date")
    assert page.evaluate("window.__pwned") is None and page.title() != "PWNED"
    assert [p for p in watch.problems if "Content Security Policy" in p] == []
    assert watch.dialogs == []
    ctx.close()


def test_phone_width_layout(browser, site):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    for path, name in (("/", "home-phone.png"), ("/papers/0704.0001", "paper-phone.png"),
                       ("/search?q=graph", "search-phone.png")):
        page.goto(site + path)
        page.wait_for_selector("html.math-ready")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        _shot(page, name)
    ctx.close()


def test_api_docs_work_offline(browser, site):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site) else None)
    page.goto(site + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
    assert "paperwire" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() >= 3
    _shot(page, "api-docs.png")
    assert outside == []
    ctx.close()
