"""E-mail verification on sign-up, password reset by mail (expires, works once),
change of password (needs the current one) and of address (confirmed by a link), all
through a real SMTP server (aiosmtpd) or the outbox."""

from __future__ import annotations

import re

import pytest
from itsdangerous import URLSafeTimedSerializer

from digest_support import SmtpServer, free_port
from paperwire.accounts import account, links
from paperwire.store import accounts
from paperwire.store.db import connect
from web_support import csrf_from, demo_db, make_client, settings_for, signup

PASSWORD = "correct horse battery"


def _link(server, rcpt: str, path: str, n: int = 1) -> str:
    server.wait_for(n)
    mails = server.handler.to(rcpt)
    assert mails, f"no mail to {rcpt}"
    text = mails[-1].msg.get_body(("plain",)).get_content()
    found = re.findall(r"https?://[^\s]+", text)
    found = [u for u in found if path in u]
    assert found, text
    return found[-1].split("testserver", 1)[-1]


def _client(db, server, **kw):
    return make_client(db, smtp_host="127.0.0.1", smtp_port=server.port, base_url="http://testserver",
                       mail_from="paperwire <accounts@papers.example>", **kw)


def _login(client, login, password):
    page = client.get("/login")
    return client.post("/login", data={"login": login, "password": password, "csrf_token": csrf_from(page.text)},
                       follow_redirects=False)


def test_signup_sends_a_verification_link_that_confirms(tmp_path):
    db = demo_db(tmp_path)
    with SmtpServer() as server:
        client = _client(db, server)
        signup(client, "alice")
        page = client.get("/settings/account")
        assert "not confirmed yet" in page.text
        url = _link(server, "alice@example.org", "/verify-email")
        assert server.messages[0].msg["Subject"] == "Confirm your e-mail address on paperwire"
        done = client.get(url)
        assert done.status_code == 200 and "is confirmed" in done.text
        assert "confirmed</strong>" in client.get("/settings/account").text
        # A forged or truncated link says so, and changes nothing.
        assert client.get(url[:-4]).status_code == 400
        # Resend needs CSRF.
        assert client.post("/settings/verify", data={}).status_code == 403


def test_signup_works_when_the_mail_server_is_down(tmp_path):
    db = demo_db(tmp_path)
    client = make_client(db, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=2.0)
    signup(client, "nomail")
    page = client.get("/settings/account")
    assert "not confirmed yet" in page.text
    resp = client.post("/settings/verify", data={"csrf_token": csrf_from(page.text)})
    assert resp.status_code == 503 and "could not send the mail" in resp.text


def test_password_reset_works_once_and_ends_sessions(tmp_path):
    db = demo_db(tmp_path)
    with SmtpServer() as server:
        owner = _client(db, server)
        signup(owner, "bob")
        server.wait_for(1)  # the verification mail
        stranger = _client(db, server)
        page = stranger.get("/password/forgot")
        # Unknown accounts get the same answer and no mail.
        resp = stranger.post("/password/forgot", data={"login": "nobody@example.org",
                                                       "csrf_token": csrf_from(page.text)})
        assert resp.status_code == 200 and "If an account has that name" in resp.text
        assert stranger.post("/password/forgot", data={"login": "bob"}).status_code == 403  # no CSRF
        resp = stranger.post("/password/forgot", data={"login": "bob", "csrf_token": csrf_from(page.text)})
        assert resp.status_code == 200 and "If an account has that name" in resp.text
        url = _link(server, "bob@example.org", "/password/reset", n=2)
        form = stranger.get(url)
        assert form.status_code == 200 and "bob" in form.text
        token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
        short = stranger.post("/password/reset", data={"token": token, "password": "short",
                                                       "csrf_token": csrf_from(form.text)})
        assert short.status_code == 422 and "at least 8" in short.text
        done = stranger.post("/password/reset", data={"token": token, "password": "a brand new secret",
                                                      "csrf_token": csrf_from(form.text)}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"
        # Works once: the same link is dead now, for the form and the page.
        again = stranger.post("/password/reset", data={"token": token, "password": "another new secret",
                                                       "csrf_token": csrf_from(form.text)})
        assert again.status_code == 400 and "already used" in again.text
        assert stranger.get(url).status_code == 400
        # The owner's old session ended; the old password is gone, the new one works.
        assert owner.get("/settings/account", follow_redirects=False).status_code == 303
        assert _login(stranger, "bob", PASSWORD).status_code == 401
        assert _login(stranger, "bob", "a brand new secret").status_code == 303


def test_reset_links_expire(tmp_path, monkeypatch):
    conn = connect(tmp_path / "x.db")
    settings = settings_for(tmp_path / "x.db")
    uid = accounts.create_user(conn, "eve", "eve@example.org", "hash-1")
    user = accounts.get_user(conn, uid)
    token = links.make_token(settings, "reset", uid, links.fingerprint(user["password_hash"]))
    assert account.check_reset(conn, settings, token)["id"] == uid
    monkeypatch.setitem(links.MAX_AGE, "reset", -1)
    with pytest.raises(links.LinkError, match="expired"):
        account.check_reset(conn, settings, token)
    monkeypatch.setitem(links.MAX_AGE, "reset", 3600)
    # A token signed with another key, or for another purpose, is not valid.
    forged = URLSafeTimedSerializer("other-key", salt="paperwire.accounts.reset").dumps([uid, "x"])
    with pytest.raises(links.LinkError, match="not valid"):
        account.check_reset(conn, settings, forged)
    verify = links.make_token(settings, "verify", uid, user["email"])
    with pytest.raises(links.LinkError):
        account.check_reset(conn, settings, verify)
    # A password change (any) kills earlier reset links.
    accounts.set_password_hash(conn, uid, "hash-2")
    with pytest.raises(links.LinkError, match="already used"):
        account.check_reset(conn, settings, token)


def test_change_password_needs_the_current_one(tmp_path):
    db = demo_db(tmp_path)
    with SmtpServer() as server:
        client = _client(db, server)
        signup(client, "carol")
        other = _client(db, server)
        assert _login(other, "carol", PASSWORD).status_code == 303
        page = client.get("/settings/account")
        wrong = client.post("/settings/password", data={"current": "not it at all", "new": "new password 1",
                                                        "csrf_token": csrf_from(page.text)})
        assert wrong.status_code == 422 and "current password is not right" in wrong.text
        assert client.post("/settings/password", data={"current": PASSWORD, "new": "new password 1"}).status_code == 403
        ok = client.post("/settings/password", data={"current": PASSWORD, "new": "new password 1",
                                                     "csrf_token": csrf_from(page.text)}, follow_redirects=False)
        assert ok.status_code == 303
        # This browser stays signed in (a new session), the other one is signed out.
        assert client.get("/settings/account").status_code == 200
        assert other.get("/settings/account", follow_redirects=False).status_code == 303
        assert _login(other, "carol", "new password 1").status_code == 303


def test_change_email_is_confirmed_by_a_link_to_the_new_address(tmp_path):
    db = demo_db(tmp_path)
    with SmtpServer() as server:
        client = _client(db, server)
        signup(client, "dora")
        signup(make_client(db, smtp_port=free_port(), smtp_timeout=1.0), "taken")
        page = client.get("/settings/account")
        tok = csrf_from(page.text)
        bad = client.post("/settings/email", data={"email": "new@example.org", "password": "wrong password",
                                                   "csrf_token": tok})
        assert bad.status_code == 422 and "password is not right" in bad.text
        dup = client.post("/settings/email", data={"email": "taken@example.org", "password": PASSWORD,
                                                   "csrf_token": tok})
        assert dup.status_code == 422 and "Another account uses that address" in dup.text
        ok = client.post("/settings/email", data={"email": "new@example.org", "password": PASSWORD,
                                                  "csrf_token": tok})
        assert ok.status_code == 200 and "We sent a link to new@example.org" in ok.text
        conn = connect(db)
        assert conn.execute("SELECT email FROM users WHERE username='dora'").fetchone()[0] == "dora@example.org"
        url = _link(server, "new@example.org", "/settings/email/confirm", n=2)
        done = client.get(url)
        assert done.status_code == 200 and "now uses new@example.org" in done.text
        assert conn.execute("SELECT email FROM users WHERE username='dora'").fetchone()[0] == "new@example.org"
        assert "confirmed</strong>" in client.get("/settings/account").text
        assert client.get(url).status_code == 400  # works once


def test_reset_mail_through_the_outbox(tmp_path):
    db = demo_db(tmp_path)
    client = make_client(db, mail_transport="outbox", base_url="http://testserver")
    signup(client, "olga")
    anon = make_client(db, mail_transport="outbox", base_url="http://testserver")
    page = anon.get("/password/forgot")
    assert anon.post("/password/forgot", data={"login": "olga@example.org",
                                               "csrf_token": csrf_from(page.text)}).status_code == 200
    conn = connect(db)
    subjects = [r[0] for r in conn.execute("SELECT subject FROM mail_outbox ORDER BY id")]
    assert subjects == ["Confirm your e-mail address on paperwire", "Reset your paperwire password"]
