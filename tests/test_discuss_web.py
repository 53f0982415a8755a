"""Discussions on the site: forms, the HF-shaped API, notifications with mail into a
real SMTP server (aiosmtpd), one-click unsubscribe, moderation, the Atom feed."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from digest_support import SmtpServer, links_in
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import accounts
from paperwire.store.db import connect
from web_support import csrf_from, make_client, signup

PID = "2401.00001"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "site.db"
    conn = connect(path)
    day = (datetime.now(timezone.utc) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    import_records(conn, [PaperRecord(title=f"Paper {i} on $x^2$", abstract="About things.", source="test",
                                      arxiv_id=f"2401.0000{i}", authors=["A"], categories=["cs.LG"], published=day)
                          for i in (1, 2)])
    conn.close()
    return path


def _tok(client, path=f"/papers/{PID}"):
    return csrf_from(client.get(path).text)


def _comment(client, text, parent="", pid=PID):
    return client.post(f"/papers/{pid}/comments", data={"text": text, "parent": parent, "csrf_token": _tok(client)},
                       follow_redirects=False)


def _cid(resp) -> str:
    assert resp.status_code == 303, resp.text[:300]
    return resp.headers["location"].rsplit("#c", 1)[1]


def test_two_accounts_discuss_through_the_forms(db):
    alice, bob = make_client(db), make_client(db)
    signup(alice, "alice")
    signup(bob, "bob")
    top = _cid(_comment(alice, "What about **lemma 2**?"))
    reply = _cid(_comment(bob, "It follows from $a_1 \\le b$.", top))
    nested = _cid(_comment(alice, "Thanks!", reply))
    page = alice.get(f"/papers/{PID}").text
    assert "<strong>lemma 2</strong>" in page and '<span class="math">$a_1 \\le b$</span>' in page
    assert page.index(f'id="c{top}"') < page.index(f'id="c{reply}"') < page.index(f'id="c{nested}"')
    assert 'class="replies"' in page and "Discussion" in page and "(3)" in page
    # the count shows on the cards and in HF's API
    assert "3 comments" in make_client(db).get("/").text
    assert make_client(db).get(f"/api/papers/{PID}").json()["numComments"] == 3
    daily = make_client(db).get("/api/daily_papers").json()
    assert {d["paper"]["id"]: d["numComments"] for d in daily}[PID] == 3
    # edit (only the author), marked edited
    r = bob.post(f"/comments/{top}/edit", data={"text": "hijacked", "csrf_token": _tok(bob)}, follow_redirects=False)
    assert r.status_code == 403
    r = alice.post(f"/comments/{top}/edit", data={"text": "What about **lemma 3**?", "csrf_token": _tok(alice)},
                   follow_redirects=False)
    assert r.status_code == 303
    page = bob.get(f"/papers/{PID}").text
    assert "lemma 3" in page and "lemma 2" not in page and "(edited)" in page
    # delete: a placeholder keeps the replies
    r = alice.post(f"/comments/{top}/delete", data={"csrf_token": _tok(alice)}, follow_redirects=False)
    assert r.status_code == 303
    page = make_client(db).get(f"/papers/{PID}").text
    assert "This comment was deleted." in page and "lemma 3" not in page and "It follows from" in page
    assert make_client(db).get(f"/api/papers/{PID}").json()["numComments"] == 2
    # upvote once
    for _ in range(2):
        bob.post(f"/comments/{nested}/upvote", data={"action": "up", "csrf_token": _tok(bob)})
    comments = bob.get(f"/api/papers/{PID}?field=comments").json()["comments"]
    assert comments[0]["replies"][1]["upvotes"] == 1


def test_writes_need_session_and_csrf_and_bounds(db):
    anon = make_client(db)
    r = anon.post(f"/papers/{PID}/comments", data={"text": "hi", "csrf_token": _tok(anon, "/login")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    user = make_client(db)
    signup(user, "carol")
    r = user.post(f"/papers/{PID}/comments", data={"text": "hi", "csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    r = _comment(user, "x" * 20001)
    assert r.status_code == 413 and "at most 20,000 characters" in r.text
    r = user.post(f"/papers/{PID}/comments", data={"text": "x" * (1024 * 1024 + 10), "csrf_token": _tok(user)})
    assert r.status_code == 413
    assert _comment(user, "", "").status_code == 422
    assert _comment(user, "hi", "99999").status_code == 404
    assert _comment(user, "hi", "junk").status_code == 404
    assert _comment(user, "hi", pid="9999.99999").status_code == 404
    for i in range(10):  # refused attempts above did not count
        assert _comment(user, f"c{i}").status_code == 303
    r = _comment(user, "one too many")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert make_client(db).get(f"/api/papers/{PID}").json()["numComments"] == 10


def test_api_comments_in_hf_shape(db):
    c = make_client(db)
    signup(c, "dave")
    csrf = c.get("/api/v1/csrf").json()["csrfToken"]
    r = c.post(f"/api/v1/papers/{PID}/comments", json={"text": "API *comment*"})
    assert r.status_code == 403
    r = make_client(db).post(f"/api/v1/papers/{PID}/comments", json={"text": "x"},
                             headers={"X-CSRF-Token": csrf})
    assert r.status_code in (401, 403)
    r = c.post(f"/api/v1/papers/{PID}/comments", json={"text": "API *comment*"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    body = r.json()
    top = body["comment"]
    assert body["numComments"] == 1 and body["discussionId"] == PID
    r = c.post(f"/api/v1/papers/{PID}/comments", json={"text": "reply", "parent": top["id"]},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["comment"]["parentId"] == top["id"]
    assert c.post(f"/api/v1/papers/{PID}/comments", json={"text": "y" * 20001},
                  headers={"X-CSRF-Token": csrf}).status_code == 413
    assert c.post(f"/api/v1/papers/{PID}/comments", json={"text": "z" * (1024 * 1024 + 1)},
                  headers={"X-CSRF-Token": csrf}).status_code == 413  # refused before it is read
    assert c.post(f"/api/v1/papers/{PID}/comments", json={"nope": 1},
                  headers={"X-CSRF-Token": csrf}).status_code == 422
    data = make_client(db).get(f"/api/papers/{PID}", params={"field": "comments"}).json()
    assert data["numComments"] == 2 and data["discussionId"] == PID
    (item,) = data["comments"]
    assert set(item["author"]) >= {"name", "fullname", "avatarUrl"} and item["author"]["name"] == "dave"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["createdAt"])
    assert item["data"]["latest"]["raw"] == "API *comment*"
    assert item["data"]["latest"]["html"].startswith("<p>API <em>comment</em>")
    assert item["replies"][0]["data"]["latest"]["raw"] == "reply"
    listed = make_client(db).get(f"/api/v1/papers/{PID}/comments").json()
    assert listed["comments"] == data["comments"] and listed["numComments"] == 2
    assert "comments" not in make_client(db).get(f"/api/papers/{PID}").json()
    assert make_client(db).get(f"/api/papers/{PID}?field=bogus").status_code == 422


def test_reply_notifies_by_page_and_mail_with_one_click_unsubscribe(db):
    with SmtpServer() as smtp:
        kw = dict(smtp_host="127.0.0.1", smtp_port=smtp.port, base_url="http://papers.test",
                  mail_from="paperwire <notify@papers.test>", mail_retry_base_seconds=0.05)
        alice, bob = make_client(db, **kw), make_client(db, **kw)
        signup(alice, "alice", email="alice@mail.test")
        signup(bob, "bob", email="bob@mail.test")
        smtp.handler.messages.clear(); smtp.handler.attempts.clear()  # the sign-up verification mails (accounts)
        top = _cid(_comment(alice, "top"))
        _cid(_comment(alice, "talking to myself", top))
        assert smtp.messages == []
        reply = _cid(_comment(bob, "Bob's *answer* <script>x</script>", top))
        smtp.wait_for(1)
        (mail,) = smtp.handler.to("alice@mail.test")
        msg = mail.msg
        assert "bob replied" in msg["Subject"]
        text = msg.get_body(("plain",)).get_content()
        assert f"http://papers.test/papers/{PID}#c{reply}" in text and "Bob's *answer*" in text
        unsub = [u for u in links_in(text) if "/notifications/unsubscribe" in u][0]
        assert msg["List-Unsubscribe"] == f"<{unsub}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # the page and the header count
        page = alice.get("/").text
        assert re.search(r'href="/notifications"[^>]*>Notifications <span class="badge unread-count">1</span>', page)
        notes = alice.get("/notifications").text
        assert "bob" in notes and f"#c{reply}" in notes and "&lt;script&gt;" in notes
        alice.post("/notifications/read", data={"csrf_token": csrf_from(notes)})
        assert "unread-count" not in alice.get("/").text
        # one click, no session needed (RFC 8058), a forged token is refused
        path = unsub.replace("http://papers.test", "")
        assert make_client(db, **kw).post(path[:-3] + "abc", data={"List-Unsubscribe": "One-Click"}).status_code == 400
        assert "Stop reply e-mails" in make_client(db, **kw).get(path).text
        r = make_client(db, **kw).post(path, data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200 and "Unsubscribed" in r.text
        _comment(bob, "another answer", top)
        assert alice.get("/notifications").text.count("bob</strong> replied") == 2
        smtp.wait_for(2, timeout=1.0)
        assert len(smtp.handler.to("alice@mail.test")) == 1  # opted out: no more mail
        # opt back in from the settings form
        alice.post("/notifications/settings", data={"email_replies": "1", "csrf_token": _tok(alice, "/notifications")})
        _comment(bob, "third answer", top)
        smtp.wait_for(2)
        assert len(smtp.handler.to("alice@mail.test")) == 2


def test_report_reaches_queue_and_hide_takes_effect(db):
    mallory, alice, admin = make_client(db), make_client(db), make_client(db)
    signup(mallory, "mallory")
    signup(alice, "alice")
    signup(admin, "root")
    conn = connect(db)
    accounts.set_admin(conn, "root")
    conn.close()
    bad = _cid(_comment(mallory, "BUY CHEAP PILLS"))
    assert alice.get("/admin/moderation").status_code == 403
    r = alice.post(f"/comments/{bad}/report", data={"reason": "spam <b>", "csrf_token": _tok(alice)})
    assert r.status_code == 200 and "Thanks for the report" in r.text
    queue = admin.get("/admin/moderation").text
    assert "BUY CHEAP PILLS" in queue and "spam &lt;b&gt;" in queue and "1 report" in queue
    r = admin.post("/admin/moderation", data={"action": "ban", "target": bad, "reason": "spam",
                                              "csrf_token": csrf_from(queue)}, follow_redirects=False)
    assert r.status_code == 303
    queue = admin.get("/admin/moderation").text
    assert "No open reports" in queue and "mallory" in queue and "<td>ban</td>" in queue
    assert "BUY CHEAP PILLS" not in make_client(db).get(f"/papers/{PID}").text
    assert "BUY CHEAP PILLS" in admin.get(f"/papers/{PID}").text  # admins still see it
    assert make_client(db).get(f"/api/papers/{PID}").json()["numComments"] == 0
    # The ban signed mallory out everywhere: her old session cookie is worth nothing, and
    # signing in again is refused.
    page = mallory.get(f"/papers/{PID}").text
    assert "Sign in to comment" in page or 'href="/login' in page
    assert csrf_from(mallory.get("/login").text)
    r = mallory.post(f"/papers/{PID}/comments", data={"text": "I'm back", "parent": "",
                                                      "csrf_token": csrf_from(mallory.get("/login").text)},
                     follow_redirects=False)
    assert r.status_code in (303, 401, 403) and "I'm back" not in make_client(db).get(f"/papers/{PID}").text
    r = mallory.post("/login", data={"login": "mallory", "password": "correct horse battery",
                                     "csrf_token": csrf_from(mallory.get("/login").text), "next": "/"})
    assert r.status_code == 403 and "banned" in r.text


def test_discussion_atom_feed(db):
    feedparser = pytest.importorskip("feedparser")
    c = make_client(db)
    signup(c, "erin")
    _cid(_comment(c, "Atom <script>alert(1)</script> *works*"))
    r = make_client(db).get(f"/papers/{PID}/discussion.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert not feed.bozo and "discussion of Paper 1" in feed.feed.title
    (entry,) = feed.entries
    assert entry.author == "erin" and "<em>works</em>" in entry.content[0].value
    assert "<script>" not in entry.content[0].value
    assert make_client(db).get("/papers/9999.99999/discussion.atom").status_code == 404


def test_reply_mail_is_retried_after_a_temporary_failure_and_sent_once(db):
    from paperwire.discuss.mail import deliver_pending
    from paperwire.store import discuss as dsql
    from web_support import settings_for

    with SmtpServer() as smtp:
        smtp.handler.policy = lambda rcpt, n: "451 try again later" if n == 1 else None
        kw = dict(smtp_host="127.0.0.1", smtp_port=smtp.port, mail_retry_base_seconds=0.05)
        alice, bob = make_client(db, **kw), make_client(db, **kw)
        signup(alice, "alice", email="alice@mail.test")
        signup(bob, "bob", email="bob@mail.test")
        smtp.handler.messages.clear(); smtp.handler.attempts.clear()  # the sign-up verification mails (accounts)
        top = _cid(_comment(alice, "top"))
        _comment(bob, "reply", top)
        conn = connect(db)
        (row,) = dsql.mail_rows(conn)
        assert row["state"] == "pending" and row["attempts"] == 1 and "451" in row["last_error"]
        assert smtp.messages == []
        import time

        time.sleep(2.2)  # retry times have whole seconds, rounded up
        settings = settings_for(db, **kw)
        assert deliver_pending(conn, settings)["sent"] == 1
        assert deliver_pending(conn, settings)["sent"] == 0  # nothing is sent twice
        (row,) = dsql.mail_rows(conn)
        assert row["state"] == "sent" and row["attempts"] == 2
        assert len(smtp.handler.to("alice@mail.test")) == 1
        conn.close()


def test_reply_mail_goes_to_the_outbox_in_demo_mode(db):
    from paperwire.store import outbox as outbox_sql

    alice, bob = make_client(db, mail_transport="outbox"), make_client(db, mail_transport="outbox")
    signup(alice, "alice", email="alice@mail.test")
    signup(bob, "bob", email="bob@mail.test")
    top = _cid(_comment(alice, "top"))
    _comment(bob, "reply in the outbox", top)
    conn = connect(db)
    rows = [r for r in outbox_sql.list_mail(conn) if "verif" not in r["subject"] and "Confirm" not in r["subject"]]
    conn.close()
    assert [(r["recipient"], r["subject"]) for r in rows] == [
        ("alice@mail.test", "bob replied on \u201cPaper 1 on $x^2$\u201d")]
