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
        page.locator(".searchform button[type=submit]").click()
        page.wait_for_load_state()
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
        offer.click()
        page.wait_for_load_state()
        assert page.locator(".searchform input[name=q]").input_value() == "graph neural networks molecules"
        assert page.locator('[data-state="did-you-mean"]').count() == 0
        assert page.locator(".result-line").is_visible()
        assert not watch.problems, watch.problems
