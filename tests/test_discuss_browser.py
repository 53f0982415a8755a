"""Discussions as people use them, in Debian's headless Chromium (Playwright): two
accounts comment, reply, edit and delete; the reply mail arrives in aiosmtpd; a hostile
comment runs nothing; a report reaches the admin queue and a hide takes effect."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from digest_support import SmtpServer
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import accounts
from paperwire.store.db import connect
from browser_support import CHROMIUM, Watch, _shot
from web_support import live_server

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")]
PID = "2401.00001"
HOSTILE = ('<script>window.__pwned="script";alert(1)</script> <img src=x onerror="window.__pwned=\'img\'"> '
           '[click me](javascript:window.__pwned=1) <svg onload="alert(2)"></svg> '
           '$\\href{javascript:alert(3)}{x}$ and $x^2$ <iframe src="https://evil.example"></iframe>\n\n'
           + ">" * 500 + " deep")


def _db(tmp_path):
    path = tmp_path / "browser.db"
    conn = connect(path)
    day = (datetime.now(timezone.utc) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    import_records(conn, [PaperRecord(title="Attention is all you need $O(n^2)$", abstract="About attention.",
                                      source="test", arxiv_id=PID, authors=["A. Author"], categories=["cs.CL"],
                                      published=day)])
    conn.close()
    return path


def _person(browser, site, name):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(f"{site}/signup?next=/papers/{PID}")
    page.fill("input[name=username]", name)
    page.fill("input[name=email]", f"{name}@mail.test")
    page.fill("input[name=password]", "a long enough password")
    page.click("button:has-text('Sign up')")
    page.wait_for_url(f"{site}/papers/{PID}")
    return ctx, page, watch


def test_two_accounts_discuss_report_and_hide(browser, tmp_path):
    db = _db(tmp_path)
    with SmtpServer() as smtp, live_server(db, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                           mail_from="paperwire <notify@papers.test>") as site:
        a_ctx, alice, a_watch = _person(browser, site, "alice")
        alice.fill(".comment-new textarea", "Is the **scaling** really $O(n^2)$?")
        alice.click(".comment-new button")
        alice.wait_for_selector(".comment-body strong")
        alice.wait_for_selector(".comment-body .katex")  # KaTeX typeset the comment's math
        top_id = alice.locator("article.comment").first.get_attribute("id")

        b_ctx, bob, b_watch = _person(browser, site, "bob")
        smtp.handler.messages.clear()  # the sign-up verification mails (accounts)
        bob.click(f"#{top_id} .comment-reply summary")
        bob.fill(f"#{top_id} .comment-reply textarea", "Yes, for the attention matrix.")
        bob.click(f"#{top_id} .comment-reply button")
        bob.wait_for_selector(".replies .comment-body:has-text('attention matrix')")
        smtp.wait_for(1)
        (mail,) = smtp.handler.to("alice@mail.test")
        assert "bob replied" in mail.msg["Subject"]
        assert "attention matrix" in mail.msg.get_body(("plain",)).get_content()

        # the header shows the unread reply; the notifications page lists it
        alice.reload()
        assert alice.locator(".unread-count").inner_text() == "1"
        alice.click("a.notify-link")
        assert "bob" in alice.locator(".notification-list").inner_text()

        # alice edits her comment
        alice.goto(f"{site}/papers/{PID}")
        alice.click(f"#{top_id} .comment-edit summary")
        alice.fill(f"#{top_id} .comment-edit textarea", "Is the scaling *quadratic*?")
        alice.click(f"#{top_id} .comment-edit button")
        alice.wait_for_selector(f"#{top_id} .comment-edited")
        assert alice.locator(f"#{top_id} .comment-body em").inner_text() == "quadratic"

        # bob posts something hostile: nothing runs, nothing breaks
        bob.goto(f"{site}/papers/{PID}")
        bob.fill(".comment-new textarea", HOSTILE)
        bob.click(".comment-new button")
        bob.wait_for_selector("article.comment:has-text('click me')")
        alice.goto(f"{site}/papers/{PID}")
        alice.wait_for_selector("html.math-ready")
        hostile = alice.locator("article.comment:has-text('click me')")
        assert hostile.locator("script, img, svg, iframe").count() == 0
        assert hostile.locator(".comment-body a").count() == 0  # the javascript: link stayed text
        assert alice.locator("[href^='javascript' i], [onerror], [onload]").count() == 0
        assert alice.evaluate("window.__pwned") is None and bob.evaluate("window.__pwned") is None
        alice.locator("#discussion").scroll_into_view_if_needed()
        _shot(alice, "discussion.png")

        # alice reports it; the admin hides it from the queue
        hostile_id = hostile.get_attribute("id")
        alice.click(f"#{hostile_id} .comment-report summary")
        alice.fill(f"#{hostile_id} .comment-report input[name=reason]", "script injection")
        alice.click(f"#{hostile_id} .comment-report button")
        alice.wait_for_selector("text=Thanks for the report")

        r_ctx, root, r_watch = _person(browser, site, "root")
        conn = connect(db)
        accounts.set_admin(conn, "root")
        conn.close()
        root.goto(f"{site}/admin/moderation")
        report = root.locator("li.report:has-text('script injection')")
        assert report.count() == 1
        report.locator("button:has-text('Hide')").click()
        root.wait_for_selector("text=No open reports")
        assert "hide" in root.locator(".audit-log").inner_text()

        alice.goto(f"{site}/papers/{PID}")
        assert alice.locator("article.comment:has-text('click me')").count() == 0

        # alice deletes her comment: a placeholder keeps bob's reply
        alice.click(f"#{top_id} .comment-delete")
        alice.wait_for_selector(f"#{top_id} .comment-removed")
        assert alice.locator(".replies .comment-body:has-text('attention matrix')").count() == 1
        assert "quadratic" not in alice.locator(".discussion").inner_text()

        for w in (a_watch, b_watch, r_watch):
            assert w.dialogs == [] and w.problems == [], (w.dialogs, w.problems)
        for ctx in (a_ctx, b_ctx, r_ctx):
            ctx.close()
