"""The search page's spelling and "nothing matches" states, in Debian's headless Chromium."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from web_support import demo_db, live_server

from browser_support import CHROMIUM, SHOTS, Watch

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")]


def test_no_match_corrected_and_did_you_mean(browser, tmp_path):
    with live_server(demo_db(tmp_path)) as site:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch = Watch(page)
        SHOTS.mkdir(parents=True, exist_ok=True)

        # Gibberish: a clear "no match" state, no cards, no pager.
        page.goto(f"{site}/search?q={quote('xyzzyqwerty plugh')}")
        box = page.locator('[data-state="no-match"]')
        assert box.is_visible() and "No paper matches" in box.inner_text()
        assert page.locator(".cards article.card").count() == 0
        page.screenshot(path=str(SHOTS / "search-no-match.png"))

        # A misspelt query typed into the box: results for the corrected words, said so.
        page.fill(".searchform input[name=q]", "retreival augmneted generaton")
        with page.expect_navigation():
            page.locator(".searchform button[type=submit]").click()
        note = page.locator('[data-state="corrected"]')
        assert note.is_visible() and "retrieval augmented generation" in note.inner_text()
        first = page.locator(".cards .card-title").first.inner_text().lower()
        assert "retrieval" in first
        page.screenshot(path=str(SHOTS / "search-corrected.png"))

        # One misspelt word among good ones: the original results, and a link to the fix.
        page.goto(f"{site}/search?q={quote('graph neural netwroks molecules')}")
        offer = page.locator('[data-state="did-you-mean"] a.suggestion')
        assert offer.is_visible() and offer.inner_text() == "graph neural networks molecules"
        page.screenshot(path=str(SHOTS / "search-did-you-mean.png"))
        with page.expect_navigation():
            offer.click()
        assert page.locator(".searchform input[name=q]").input_value() == "graph neural networks molecules"
        assert page.locator('[data-state="did-you-mean"]').count() == 0
        assert page.locator(".result-line").is_visible()
        assert not watch.problems, watch.problems


def test_a_pasted_long_query_is_cut_at_a_word_boundary_with_a_note(browser, tmp_path):
    """A paragraph pasted into a search box reaches the server whole (the box accepts more than
    the engine's 250 characters), which cuts it at a word boundary and says so: a browser's own
    maxlength would have cut it mid-word, silently."""
    words = ("sparse mixture of experts routing with load balancing across accelerators "
             "for efficient inference of large language models under tight memory budgets ")
    long_q = (words * 4).strip()  # ~620 characters
    assert len(long_q) > 400
    with live_server(demo_db(tmp_path)) as site:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch = Watch(page)
        for start, box in ((f"{site}/search", ".searchform input[name=q]"), (f"{site}/", "header input[name=q]")):
            page.goto(start)
            page.focus(box)
            page.keyboard.insert_text(long_q)  # what a paste does: the box's maxlength applies
            assert page.locator(box).input_value() == long_q
            with page.expect_navigation():
                page.keyboard.press("Enter")
            shown = page.locator(".searchform input[name=q]").input_value()
            assert 200 < len(shown) <= 250 and long_q.startswith(shown) and long_q[len(shown)] == " "
            assert f"the query was cut to {len(shown)} characters" in page.locator("main").inner_text()
            assert page.locator(".cards article.card").count() > 0
        page.screenshot(path=str(SHOTS / "search-long-query-cut.png"))
        assert not watch.problems, watch.problems
