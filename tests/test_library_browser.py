"""The library as a person uses it, in Debian's headless Chromium (Playwright, no download):
sign up, save three papers from the cards (JS path, with undo), see them on /library,
a hostile note and folder name stay inert text, share the folder and open it signed
out, and another reader's private folder is a 404."""

from __future__ import annotations

import os
import re

import pytest

from browser_support import CHROMIUM, Watch, _shot
from web_support import demo_db, live_server

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")]

XSS_NOTE = "<img src=x onerror=alert(1)>"
XSS_FOLDER = "<script>"
XSS_TAG = "<b onmouseover=alert(3)>t</b>"


def _signup(page, site, name):
    page.goto(site + "/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=email]", f"{name}@example.org")
    page.fill("input[name=password]", "a long enough password")
    page.click("button:has-text('Sign up')")
    page.wait_for_selector(".who")


def test_save_library_xss_share(browser, tmp_path):
    from playwright.sync_api import expect

    with live_server(demo_db(tmp_path)) as site:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        watch = Watch(page)
        _signup(page, site, "reader")
        page.goto(site + "/papers/date/2007-04-16?sort=date")
        cards = page.locator("article.card")
        titles = []
        for i in range(3):
            card = cards.nth(i)
            titles.append(card.locator("h2 a").inner_text())
            card.locator(".save-btn").click()
            expect(card.locator(".save-btn")).to_have_text("Saved")
        # Undo from the toast takes the last save back; saving again restores it.
        page.click(".lib-toast .lib-undo")
        expect(cards.nth(2).locator(".save-btn")).to_have_text("Save")
        cards.nth(2).locator(".save-btn").click()
        expect(cards.nth(2).locator(".save-btn")).to_have_text("Saved")
        _shot(page, "library-saved-cards.png")
        page.reload()  # the state is on the server, not only in the page
        assert all(cards.nth(i).locator(".save-btn").inner_text() == "Saved" for i in range(3))

        page.click("a[href='/library']")
        page.wait_for_selector("article.lib-item")
        assert sorted(page.locator("article.lib-item h2 a").all_inner_texts()) == sorted(titles)

        first = page.locator("article.lib-item").first
        first.locator("textarea[name=note]").fill(XSS_NOTE)
        first.locator("button:has-text('Save note')").click()
        page.wait_for_selector(".note-text")
        first = page.locator("article.lib-item").first
        first.locator("input[name=add]").fill(XSS_TAG)
        first.locator("button:has-text('Tag')").click()
        page.wait_for_selector(".item-tag")
        page.fill("input[name=name][placeholder='New folder']", XSS_FOLDER)
        page.click("button:has-text('Create')")
        page.wait_for_selector("h1 .folder-name")
        assert page.locator("h1 .folder-name").inner_text() == XSS_FOLDER
        page.goto(site + "/library")
        first = page.locator("article.lib-item").first
        first.locator("button:has-text('Add to folder')").click()
        page.wait_for_selector(".folder-chip")
        assert page.locator(".note-text").inner_text() == XSS_NOTE  # shown literally
        assert page.locator(".item-tag").first.inner_text() == XSS_TAG
        assert page.locator(".folder-chip").first.inner_text() == XSS_FOLDER
        assert page.locator("img[src=x]").count() == 0 and page.locator(".lib-item b").count() == 0
        _shot(page, "library-page.png")

        page.click(".folder-chip")
        page.wait_for_selector(".share-toggle")
        page.click(".share-toggle")
        page.wait_for_selector("a.share-link")
        share = page.locator("a.share-link").get_attribute("href")
        assert re.fullmatch(r"/shared/[A-Za-z0-9_-]{20,}", share)
        folder_id = page.locator("form[action^='/library/folders/']").first.get_attribute("action").rsplit("/", 1)[1]
        assert page.locator("article.lib-item").count() == 1

        # Signed out: the shared folder opens; the text is still inert.
        anon = browser.new_context(viewport={"width": 1280, "height": 900})
        apage = anon.new_page()
        awatch = Watch(apage)
        apage.goto(site + share)
        assert apage.locator("h1.folder-name").inner_text() == XSS_FOLDER
        assert apage.locator("article.card").count() == 1
        _shot(apage, "library-shared.png")
        anon.close()

        # Another reader: the owner's private folder is a 404; so is a private one of their own kind.
        other = browser.new_context(viewport={"width": 1280, "height": 900})
        opage = other.new_page()
        owatch = Watch(opage)
        _signup(opage, site, "other")
        page.click(".share-toggle")  # make it private again
        page.wait_for_selector("button:has-text('Make public')")
        r = opage.goto(f"{site}/library/folders/{folder_id}")
        assert r.status == 404
        r = opage.goto(site + share)
        assert r.status == 404
        other.close()

        for w in (watch, awatch, owatch):
            assert w.dialogs == []
            assert [p for p in w.problems if "404" not in p] == []
        ctx.close()
