"""Discussions, the library side: Markdown sanitising against hostile input, threading
one level deep, delete placeholders, counts kept in step, votes, reports, moderation,
bans, rate limits and notifications. Real SQLite files in tmp_path."""

from __future__ import annotations

import re

import pytest

from paperwire.discuss import comments as dc
from paperwire.discuss import markdown, moderation
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import accounts
from paperwire.store.papers import get_paper
from paperwire.store import discuss as dsql
from paperwire.store.db import connect


@pytest.fixture
def db(store_target):
    """Two papers and four accounts, on each engine (the discussion tables are written once)."""
    conn = connect(store_target)
    import_records(conn, [PaperRecord(title=f"Paper {i}", abstract="About things.", source="test",
                                      arxiv_id=f"2401.0000{i}", authors=["A"], categories=["cs.LG"],
                                      published="2024-01-01T00:00:00Z") for i in (1, 2)])
    users = {}
    for name, admin in (("alice", False), ("bob", False), ("carol", False), ("root", True)):
        uid = accounts.create_user(conn, name, f"{name}@example.org", "x", is_admin=admin)
        users[name] = accounts.get_user(conn, uid)
    yield conn, users
    conn.close()


def _paper(conn, pid="2401.00001"):
    return get_paper(conn, pid, include_hidden=True)


# ---------------------------------------------------------------- Markdown

HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "[click](javascript:window.__pwned=1)",
    "[click](JAVASCRIPT:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD4=)",
    "[click](vbscript:msgbox)",
    '<a href="javascript:alert(1)">x</a>',
    "<javascript:alert(1)>",
    '[x](https://ok.example "t" onmouseover=alert(1))',
    "<iframe src=https://evil.example></iframe>",
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "$<img src=x onerror=alert(1)>$",
    "$$</span><script>alert(1)</script>$$",
    "![x](javascript:alert(1))",
    "[x](//evil.example/path)",
    "[x](/relative/path)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<!-- <script>alert(1)</script> -->",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_is_inert(text):
    html = markdown.render(text)
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<iframe" not in html.lower()
    assert "<svg" not in html.lower() and "<div" not in html.lower()
    assert not re.search(r"<[^>]+\son\w+\s*=", html, re.I), html  # no event-handler attribute on any tag
    assert not re.search(r"<[^>]+\sstyle\s*=", html, re.I)
    for href in re.findall(r'<a\s[^>]*href="([^"]*)"', html):
        assert href.startswith(("http://", "https://")), html
    for tag in re.findall(r"<a\s[^>]*>", html):
        assert 'rel="nofollow ugc noopener"' in tag


def test_markdown_features_and_math():
    html = markdown.render("Hello *you* and **all**: `x<y`\n\n> quoted\n\n- a\n- b\n\n"
                           "[site](https://example.org/a?b=1&c=2) and <https://auto.example>\n\n"
                           "Math $a_1 * b_2 < c$ and $$\\sum_{i} x_i$$, costs $5 and $6.")
    assert "<em>you</em>" in html and "<strong>all</strong>" in html and "<code>x&lt;y</code>" in html
    assert "<blockquote>" in html and "<li>a</li>" in html
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow ugc noopener">site</a>' in html
    assert 'href="https://auto.example"' in html
    # math is kept verbatim (no emphasis from "*" or "_") for KaTeX, and escaped
    assert '<span class="math">$a_1 * b_2 &lt; c$</span>' in html
    assert '<span class="math">$$\\sum_{i} x_i$$</span>' in html
    assert "costs $5 and $6" in html  # prices are not math


def test_deep_nesting_is_flattened_not_fatal():
    for text in (">" * 500 + " deep", "- " * 500 + "deep", "[" * 5000 + "deep", "*" * 5000 + "deep" + "*" * 5000,
                 "x " + "`" * 10000 + "deep", "$" * 10000 + "deep", "[a](" * 4000 + "deep", "<" * 19000 + "deep",
                 "> " * 30 + "<script>alert(1)</script> deep"):
        html = markdown.render(text)
        assert html.count("<blockquote>") <= markdown.MAX_NESTING
        assert html.count("<ul>") <= markdown.MAX_NESTING
        assert "deep" in html  # past the nesting limit the text is shown plain, not dropped
        assert "<script" not in html


def test_too_long_refused():
    markdown.render("x" * markdown.MAX_CHARS)
    with pytest.raises(markdown.CommentTooLong, match="20,000"):
        markdown.render("x" * (markdown.MAX_CHARS + 1))


# ---------------------------------------------------------------- threads, counts

def test_threading_one_level_and_counts(db):
    conn, u = db
    paper = _paper(conn)
    top = dc.post(conn, u["alice"], paper, "Top comment").comment
    r1 = dc.post(conn, u["bob"], paper, "A reply", top["id"]).comment
    r2 = dc.post(conn, u["carol"], paper, "A reply to the reply", r1["id"]).comment
    assert r1["parent"] == top["id"] and r2["parent"] == top["id"]  # attaches to the top level
    other = dc.post(conn, u["bob"], paper, "Second thread").comment
    threads = dc.thread(conn, paper["id"], None)
    assert [t["id"] for t in threads] == [top["id"], other["id"]]
    assert [r["id"] for r in threads[0]["replies"]] == [r1["id"], r2["id"]]
    assert _paper(conn)["num_comments"] == 4 == dc.count_shown(threads)
    assert _paper(conn, "2401.00002")["num_comments"] == 0
    with pytest.raises(dc.DiscussError, match="another paper"):
        dc.post(conn, u["bob"], _paper(conn, "2401.00002"), "x", top["id"])
    with pytest.raises(dc.NotFound):
        dc.post(conn, u["bob"], paper, "x", 999999)
    with pytest.raises(dc.DiscussError, match="empty"):
        dc.post(conn, u["bob"], paper, "   \n ")


def test_delete_leaves_placeholder_that_keeps_replies(db):
    conn, u = db
    paper = _paper(conn)
    top = dc.post(conn, u["alice"], paper, "I will delete this").comment
    dc.post(conn, u["bob"], paper, "reply stays", top["id"])
    lonely = dc.post(conn, u["alice"], paper, "no replies").comment
    with pytest.raises(dc.Forbidden):
        dc.delete(conn, u["bob"], top["id"])
    dc.delete(conn, u["alice"], top["id"])
    dc.delete(conn, u["alice"], lonely["id"])
    threads = dc.thread(conn, paper["id"], u["bob"])
    assert len(threads) == 1 and threads[0]["state"] == "deleted" and threads[0]["raw"] == ""
    assert threads[0]["replies"][0]["raw"] == "reply stays"
    assert _paper(conn)["num_comments"] == 1
    stored = dsql.get_comment(conn, top["id"])
    assert stored["raw"] == "" and stored["html"] == "" and stored["deleted_at"]
    with pytest.raises(dc.DiscussError, match="removed"):
        dc.post(conn, u["carol"], paper, "reply to a deleted one", top["id"])


def test_edit_keeps_revisions_and_marks_edited(db):
    conn, u = db
    c = dc.post(conn, u["alice"], _paper(conn), "first").comment
    with pytest.raises(dc.Forbidden):
        dc.edit(conn, u["bob"], c["id"], "hijack")
    e = dc.edit(conn, u["alice"], c["id"], "second *take*")
    assert e["raw"] == "second *take*" and "<em>take</em>" in e["html"] and e["edited_at"]
    dc.edit(conn, u["alice"], c["id"], "third")
    assert [r["raw"] for r in dsql.revisions(conn, c["id"])] == ["first", "second *take*"]
    assert dc.thread(conn, _paper(conn)["id"])[0]["num_edits"] == 2


def test_votes_once_per_user(db):
    conn, u = db
    c = dc.post(conn, u["alice"], _paper(conn), "vote me").comment
    assert dc.vote(conn, u["bob"], c["id"]) == 1
    assert dc.vote(conn, u["bob"], c["id"]) == 1
    assert dc.vote(conn, u["carol"], c["id"]) == 2
    assert dc.vote(conn, u["bob"], c["id"], up=False) == 1
    assert dsql.get_comment(conn, c["id"])["upvotes"] == 1


def test_rate_limit_per_account(db):
    conn, u = db
    paper = _paper(conn)
    for i in range(dc.RATE_LIMIT):
        dc.post(conn, u["alice"], paper, f"comment {i}")
    with pytest.raises(dc.RateLimited) as info:
        dc.post(conn, u["alice"], paper, "one too many")
    assert info.value.status == 429 and info.value.wait > 0
    dc.post(conn, u["bob"], paper, "bob is not limited by alice")
    assert _paper(conn)["num_comments"] == dc.RATE_LIMIT + 1


def test_report_hide_restore_ban_and_audit(db):
    conn, u = db
    paper = _paper(conn)
    bad = dc.post(conn, u["bob"], paper, "spam spam").comment
    assert dc.report(conn, u["alice"], bad["id"], "spam") is True
    assert dc.report(conn, u["alice"], bad["id"], "again") is False  # one open report per user
    dc.report(conn, u["carol"], bad["id"], "")
    q = moderation.queue(conn, u["root"])
    assert [(r["id"], r["reports"]) for r in q["reports"]] == [(bad["id"], 2)]
    with pytest.raises(dc.Forbidden):
        moderation.act(conn, u["alice"], "hide", bad["id"])
    moderation.act(conn, u["root"], "hide", bad["id"], "spam")
    assert _paper(conn)["num_comments"] == 0
    assert dc.thread(conn, paper["id"], u["alice"]) == []  # hidden, no replies: gone for users
    assert dc.thread(conn, paper["id"], u["root"])[0]["hidden"] == 1  # admins still see it
    assert moderation.queue(conn, u["root"])["reports"] == []
    moderation.act(conn, u["root"], "restore", bad["id"])
    assert _paper(conn)["num_comments"] == 1
    dc.report(conn, u["carol"], bad["id"], "still spam")  # a resolved report can be made again
    from paperwire.store import accounts as acc_sql
    from paperwire.store import tokens as tok_sql

    acc_sql.create_session(conn, u["bob"]["id"], "bobs-session-cookie")
    tok_sql.insert_token(conn, user_id=u["bob"]["id"], name="t", token_hash="hash-of-bobs-token", prefix="pw_x",
                         scope="write", now="2026-11-20T00:00:00Z")
    assert acc_sql.session_user(conn, "bobs-session-cookie")["id"] == u["bob"]["id"]
    assert tok_sql.token_user(conn, "hash-of-bobs-token") is not None
    moderation.act(conn, u["root"], "ban", bad["id"], "spammer")
    # Banned from the queue: signed out everywhere and tokens revoked, as from the admin page.
    assert acc_sql.session_user(conn, "bobs-session-cookie") is None
    assert tok_sql.token_user(conn, "hash-of-bobs-token") is None
    assert all(t["revoked_at"] for t in tok_sql.user_tokens(conn, u["bob"]["id"]))
    with pytest.raises(dc.Forbidden, match="banned"):
        dc.post(conn, u["bob"], paper, "I am back")
    with pytest.raises(dc.Forbidden):
        moderation.act(conn, u["root"], "ban", dc.post(conn, u["root"], paper, "admin").comment["id"])
    actions = [(a["action"], a["target_kind"]) for a in dsql.audit_log(conn)]
    assert actions[::-1][:4] == [("hide", "comment"), ("restore", "comment"), ("ban", "user"), ("hide", "comment")]
    moderation.act(conn, u["root"], "unban", u["bob"]["id"])
    dc.post(conn, u["bob"], paper, "reformed")
    assert dsql.audit_log(conn)[0]["action"] == "unban"


def test_notifications_for_replies_not_self(db):
    conn, u = db
    paper = _paper(conn)
    seen = []
    top = dc.post(conn, u["alice"], paper, "top").comment
    dc.post(conn, u["alice"], paper, "my own reply", top["id"], on_notify=lambda *a: seen.append(a[2]))
    assert seen == [] and dsql.unread_count(conn, u["alice"]["id"]) == 0
    r = dc.post(conn, u["bob"], paper, "bob replies", top["id"], on_notify=lambda *a: seen.append(a[2])).comment
    dc.post(conn, u["carol"], paper, "carol replies to bob", r["id"], on_notify=lambda *a: seen.append(a[2]))
    assert seen == [u["alice"]["id"], u["bob"]["id"], u["alice"]["id"]]
    assert dsql.unread_count(conn, u["alice"]["id"]) == 2 and dsql.unread_count(conn, u["bob"]["id"]) == 1
    dsql.mark_read(conn, u["alice"]["id"], "2030-01-01T00:00:00Z")
    assert dsql.unread_count(conn, u["alice"]["id"]) == 0


def test_bad_ids_are_not_found(db):
    conn, u = db
    for bad in ("x", "-1", "0", "99999999999999999999999", None, "1e9"):
        with pytest.raises(dc.NotFound):
            dc.visible_comment(conn, bad, u["alice"])
