"""Accounts in Debian's headless Chromium: a forgotten password reset end to end through
the mail (aiosmtpd), and an avatar upload that is refused with a clear message."""

from __future__ import annotations

import os
import re

import pytest

from digest_support import SmtpServer
from paperwire.store.db import connect
from web_support import demo_db, live_server

from browser_support import CHROMIUM, SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")]


def _signup(page, url, name, password):
    page.goto(f"{url}/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=email]", f"{name}@example.org")
    page.fill("input[name=password]", password)
    page.click("form[action='/signup'] button[type=submit]")
    page.wait_for_url(f"{url}/")


def _mail_link(server, rcpt, path, n):
    server.wait_for(n, timeout=15)
    mails = server.handler.to(rcpt)
    text = mails[-1].msg.get_body(("plain",)).get_content()
    return [u for u in re.findall(r"https?://\S+", text) if path in u][-1]


def test_password_reset_through_the_mail(browser, tmp_path):
    db = demo_db(tmp_path)
    with SmtpServer() as server, live_server(db, smtp_host="127.0.0.1", smtp_port=server.port,
                                             mail_from="paperwire <accounts@papers.example>") as url:
        ctx = browser.new_context()
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _signup(page, url, "walter", "first password 1")
        page.click("text=Sign out")
        # Forgot it: ask for a link from the sign-in page.
        page.goto(f"{url}/login")
        page.click("text=Forgot your password?")
        page.fill("input[name=login]", "walter@example.org")
        page.click("form[action='/password/forgot'] button[type=submit]")
        assert "a reset link is on its way" in page.inner_text("main")
        link = _mail_link(server, "walter@example.org", "/password/reset", 2)
        assert link.startswith(url)
        page.goto(link)
        assert "walter" in page.inner_text("main")
        page.fill("input[name=password]", "second password 2")
        page.click("form[action='/password/reset'] button[type=submit]")
        page.wait_for_url(re.compile(r".*/login\?reset=1$"))
        assert "Your password was changed" in page.inner_text("main")
        # The old password no longer works, the new one does.
        page.fill("input[name=login]", "walter")
        page.fill("input[name=password]", "first password 1")
        page.click("form[action='/login'] button[type=submit]")
        assert "Wrong username or password" in page.inner_text("main")
        page.fill("input[name=login]", "walter")
        page.fill("input[name=password]", "second password 2")
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url(f"{url}/")
        assert "walter" in page.inner_text("header")
        # The link was used: opening it again says so.
        page.goto(link)
        assert "already used" in page.inner_text("main")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "accounts_reset_used.png"))
        assert not errors
        ctx.close()


def test_avatar_upload_refused_in_the_browser(browser, tmp_path):
    db = demo_db(tmp_path)
    not_image = tmp_path / "holiday.png"
    not_image.write_bytes(b"<html><script>alert(1)</script></html>" * 20)
    real = tmp_path / "me.png"
    from PIL import Image

    Image.new("RGB", (500, 300), (0, 128, 0)).save(real)
    with live_server(db) as url:
        ctx = browser.new_context()
        page = ctx.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        _signup(page, url, "ava", "first password 1")
        page.goto(f"{url}/settings/profile")
        page.set_input_files("input[name=file]", str(not_image))
        page.click("button[value=upload]")
        alert = page.locator("[role=alert]")
        assert "not an image we can read" in alert.inner_text()
        assert connect(db).execute("SELECT COUNT(*) FROM user_avatars").fetchone()[0] == 0
        page.set_input_files("input[name=file]", str(real))
        page.click("button[value=upload]")
        page.wait_for_url(re.compile(r".*/settings/profile\?done=avatar$"))
        page.goto(f"{url}/u/ava")
        page.wait_for_function("() => document.querySelector('img.avatar').complete")
        size = page.evaluate("""() => { const i = document.querySelector('img.avatar');
                                 return [i.complete, i.naturalWidth, i.naturalHeight]; }""")
        assert size == [True, 256, 256]
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "accounts_profile.png"))
        assert not dialogs
        ctx.close()
