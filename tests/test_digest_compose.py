"""Composing and rendering: sections, the at-most-once paper ledger, escaping, headers, preview."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from digest_support import SECRET, SmtpServer, activate, add_papers, links_in, make_settings
from paperwire.digest import send as digest_send
from paperwire.digest.compose import compose_digest
from paperwire.digest.periods import is_due, period_key
from paperwire.store import digest as sql

NOW = datetime.now(timezone.utc)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def test_periods_daily_and_weekly():
    t = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)  # a Sunday, ISO week 47
    assert period_key("daily", t, "UTC") == "daily:2026-11-22"
    assert period_key("weekly", t, "UTC") == "weekly:2026-W47"
    assert period_key("weekly", t + timedelta(days=1), "UTC") == "weekly:2026-W48"
    assert period_key("daily", t, "Asia/Tokyo") == "daily:2026-11-22"
    assert period_key("daily", t.replace(hour=20), "Asia/Tokyo") == "daily:2026-11-23"
    assert is_due("daily", t, hour=9, weekday=0, zone="UTC") and not is_due("daily", t, hour=10, weekday=0, zone="UTC")
    monday = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
    assert not is_due("weekly", monday, hour=7, weekday=0, zone="UTC")
    assert is_due("weekly", monday.replace(hour=7), hour=7, weekday=0, zone="UTC")
    assert is_due("weekly", monday + timedelta(days=2), hour=7, weekday=0, zone="UTC")  # catch-up


def test_sections_and_each_paper_once_ever(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 12, categories=("cs.CL",))
    add_papers(conn, 3, start=100, categories=("math.AG",), authors=["Emmy Noether"], prefix="Algebra")
    sub = activate(conn, settings, "f@example.org", top_n=2, authors=["emmy noether"], categories=["cs.CL"],
                   queries=["number 2"])
    d = compose_digest(conn, settings, sub, period="daily:x", now=NOW)
    got = {s.key: [p["paper_id"] for p in s.papers] for s in d.sections}
    # Same age: most votes first; sections never repeat a paper of an earlier one.
    assert got["trending"] == ["2611.00102", "2611.00101"]
    assert got["authors"] == ["2611.00100"]
    assert got["categories"][:2] == ["2611.00012", "2611.00011"] and len(got["categories"]) == 10
    assert got["search"] == ["2611.00002"]
    rowids = d.paper_rowids
    assert len(rowids) == len(set(rowids))  # once per digest even when sections overlap

    r1 = digest_send.run_digests(conn, settings, "daily")
    assert r1.sent == 1
    first = set(json.loads(sql.sends_for_subscription(conn, sub["id"])[0]["papers"]))
    # The same period again: no second mail.
    assert digest_send.run_digests(conn, settings, "daily").sent == 0
    # Next period: only papers never sent before; later, nothing new -> no mail at all.
    tomorrow = NOW + timedelta(days=1)
    r2 = digest_send.run_digests(conn, settings, "daily", now=tomorrow)
    second = set(json.loads(sql.sends_for_subscription(conn, sub["id"])[-1]["papers"])) if r2.sent else set()
    assert not (first & second)
    sent_total = r1.sent + r2.sent
    for day in range(2, 6):
        r = digest_send.run_digests(conn, settings, "daily", now=NOW + timedelta(days=day))
        sent_total += r.sent
        if r.sent == 0:
            assert r.empty == 1
            break
    else:
        pytest.fail("the digest never ran out of new papers")
    assert len(smtp.messages) == sent_total
    all_ids = [p for row in sql.sends_for_subscription(conn, sub["id"]) for p in json.loads(row["papers"])]
    assert len(all_ids) == len(set(all_ids))


def test_nothing_new_sends_nothing(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 3, days_ago=30)  # too old for any window
    activate(conn, settings, "g@example.org", top_n=10)
    r = digest_send.run_digests(conn, settings, "daily")
    assert (r.composed, r.empty, r.sent) == (0, 1, 0)
    assert smtp.messages == []


def test_message_format_headers_parts_links_and_escaping(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    hostile = '<script>alert(1)</script><img src=x onerror="steal()"> Naïve Bayes & "quotes"'
    add_papers(conn, 2, abstract=hostile)
    sub = activate(conn, settings, "h@example.org", top_n=5)
    digest_send.run_digests(conn, settings, "daily")
    assert len(smtp.messages) == 1
    got = smtp.messages[0]
    assert got.rcpt_tos == ["h@example.org"] and got.mail_from == "digest@papers.example"
    msg = got.msg
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for h in ("Message-ID", "Date", "From", "To", "Subject", "List-Unsubscribe", "List-Id"):
        assert msg[h], h
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    lu = str(msg["List-Unsubscribe"])
    assert "<https://papers.example/digest/unsubscribe?token=" in lu and "<mailto:digest@papers.example?subject=" in lu
    row = sql.sends_for_subscription(conn, sub["id"])[0]
    assert row["message_id"] == msg["Message-ID"] and row["state"] == "sent"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script" not in html.lower() and "onerror=\"" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "Naïve Bayes &amp; " in html
    assert "style=" in html and "<style" not in html  # inline CSS only
    assert "<script>alert(1)</script>" in text  # plain text is plain text
    for body in (html, text):
        urls = links_in(body)
        assert "https://papers.example/papers/2611.00002" in urls and "https://papers.example/papers/2611.00001" in urls
        assert any("/digest/manage?token=" in u for u in urls)
        assert any("/digest/unsubscribe?token=" in u for u in urls)
    assert "Paper 2: a study of things" in text and "Author 2, Ada Lovelace" in text


def test_personal_picks_fallback_and_user_link(conn, db_path, smtp, monkeypatch):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 4, categories=("cs.CL",), authors=["Grace Hopper"])
    add_papers(conn, 4, start=50, categories=("q-bio.NC",), authors=["Santiago Ramon"], prefix="Neuro")
    conn.execute("INSERT INTO users (username, email, password_hash, created_at) VALUES "
                 "('ivy', 'ivy@example.org', 'x', '2026-01-01T00:00:00Z')")
    uid = conn.execute("SELECT id FROM users").fetchone()[0]
    seed = conn.execute("SELECT id FROM papers WHERE paper_id='2611.00050'").fetchone()[0]
    conn.execute("INSERT INTO votes (user_id, paper, created_at) VALUES (?, ?, '2026-01-01T00:00:00Z')", (uid, seed))
    sub = activate(conn, settings, "ivy@example.org", top_n=0, personal=True)
    # Whatever the search area's state, picks come out (similar() or the SQL fallback).
    import paperwire.digest.compose as compose

    monkeypatch.setattr(compose, "_optional", lambda name: None)
    d = compose_digest(conn, settings, sub, period="daily:x", now=NOW)
    assert [s.key for s in d.sections] == ["picks"]
    picked = [p["paper_id"] for p in d.sections[0].papers]
    assert picked and all(p.startswith("2611.0005") for p in picked) and "2611.00050" not in picked

    def broken(*a, **k):
        raise RuntimeError("index not built")

    monkeypatch.setattr(compose, "_optional", lambda name: broken)
    d = compose_digest(conn, settings, sub, period="daily:x", now=NOW)
    assert [p["paper_id"] for p in d.sections[0].papers] == picked


def test_saved_search_fallback_and_search_area(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 3, prefix="Transformers")
    add_papers(conn, 3, start=20, prefix="Bananas")
    sub = activate(conn, settings, "j@example.org", top_n=0, queries=["bananas"])
    d = compose_digest(conn, settings, sub, period="daily:x", now=NOW)
    got = [p["title"] for s in d.sections for p in s.papers]
    assert got and all(t.startswith("Bananas") for t in got)


def test_preview_cli_records_nothing(conn, store_arg, smtp, tmp_path, monkeypatch):
    from paperwire.cli import cli

    settings = make_settings(store_arg, smtp.port)
    add_papers(conn, 3)
    activate(conn, settings, "k@example.org", top_n=2)
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(store_arg), "digest", "preview", "k@example.org"])
    assert out.exit_code == 0, out.output
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in out.output and "Paper 3" in out.output
    eml, html = tmp_path / "d.eml", tmp_path / "d.html"
    assert runner.invoke(cli, ["--db", str(store_arg), "digest", "preview", "k@example.org", "-o", str(eml)]).exit_code == 0
    assert runner.invoke(cli, ["--db", str(store_arg), "digest", "preview", "k@example.org", "-o", str(html)]).exit_code == 0
    assert eml.read_bytes().startswith(b"From:") or b"Message-ID" in eml.read_bytes()
    assert html.read_text().lstrip().startswith("<!DOCTYPE html>")
    assert sql.send_counts(conn) == {} and conn.execute("SELECT COUNT(*) FROM digest_sent_papers").fetchone()[0] == 0
    assert smtp.messages == []
    bad = runner.invoke(cli, ["--db", str(store_arg), "digest", "preview", "not an address"])
    assert bad.exit_code == 1 and "valid email address" in bad.output


def test_weekly_and_daily_are_separate_periods(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 6)
    activate(conn, settings, "daily@example.org", frequency="daily", top_n=2)
    activate(conn, settings, "weekly@example.org", frequency="weekly", top_n=2)
    t = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)  # a Monday
    add_papers(conn, 6, start=200, now=t)
    rd = digest_send.run_digests(conn, settings, "daily", now=t)
    rw = digest_send.run_digests(conn, settings, "weekly", now=t)
    assert (rd.period, rw.period) == ("daily:2026-11-23", "weekly:2026-W48")
    assert len(smtp.handler.to("daily@example.org")) == 1 and len(smtp.handler.to("weekly@example.org")) == 1
    # Tuesday: a new daily period, the same weekly one.
    add_papers(conn, 4, start=300, now=t + timedelta(days=1))
    digest_send.run_digests(conn, settings, "daily", now=t + timedelta(days=1))
    digest_send.run_digests(conn, settings, "weekly", now=t + timedelta(days=1))
    assert len(smtp.handler.to("daily@example.org")) == 2 and len(smtp.handler.to("weekly@example.org")) == 1
    assert smtp.handler.to("weekly@example.org")[0].msg["Subject"].startswith("Weekly papers:")


def test_non_ascii_headers_and_7bit_wire_format(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port, mail_from="Pàpërwire Digest <digest@papers.example>")
    add_papers(conn, 1, prefix="Über Gödel’s théorème — 数学")
    activate(conn, settings, "u@example.org", top_n=1)
    assert digest_send.run_digests(conn, settings, "daily").sent == 1
    raw = smtp.messages[0].data
    assert raw.isascii()  # quoted-printable bodies, RFC 2047 headers: safe through any relay
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = smtp.messages[0].msg
    assert str(msg["Subject"]).startswith("Daily papers: Über Gödel’s théorème — 数学 1")
    assert msg["From"].addresses[0].display_name == "Pàpërwire Digest"
    assert "Über Gödel’s théorème — 数学 1" in msg.get_body(("html",)).get_content()
    assert msg.defects == [] and all(not p.defects for p in msg.iter_parts())


def test_saved_search_text_fallback_matches_whole_words_on_both_engines(engine_conn):
    # Without a search index (a PostgreSQL node before its tantivy replica is built), saved
    # searches fall back to a text match; "2" must not find "12", nor "tri" find "trial".
    add_papers(engine_conn, 3, start=1, prefix="Trial")
    add_papers(engine_conn, 1, start=12, prefix="Trial")
    since = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d")
    titles = lambda words: sorted(p["title"] for p in sql.recent_matching(engine_conn, words, since, 10))  # noqa: E731
    assert titles(["2"]) == ["Trial 2: a study of things"]
    assert titles(["TRIAL", "things"]) == sorted(f"Trial {i}: a study of things" for i in (1, 2, 3, 12))
    assert titles(["tri"]) == [] and titles(["12,"]) == ["Trial 12: a study of things"]
    assert len(sql.recent_matching(engine_conn, ["trial"], since, 2)) == 2


def test_indexed_saved_search_lists_papers_with_every_word_best_first_on_both_engines(engine_conn, db_path):
    # With the search index built, a saved search runs through search(): it ranks new papers
    # by relevance and keeps those that hold every word (by stem: "studies" finds "study"),
    # like the text fallback; a paper with only some of the words ("number" alone) is left out.
    from paperwire.digest.compose import ComposeCache, _search
    from paperwire.index.build import update_index

    add_papers(engine_conn, 12, categories=("cs.CL",))
    add_papers(engine_conn, 1, start=40, abstract="Number 2 and number 2 again: a study of number 2, twice over.")
    update_index(engine_conn, semantic=False)
    since = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d")
    cache = ComposeCache()
    assert cache.search_indexed(engine_conn)
    got = [p["paper_id"] for p in _search(engine_conn, cache, "number 2", since)]
    assert set(got) == {"2611.00040", "2611.00002"} and not cache.notes
    from paperwire.index.search import search

    ranked = [h.paper_id for h in search(engine_conn, "number 2", mode="lexical", after=since).hits]
    assert got == [p for p in ranked if p in got]  # in relevance order, not newest first
    assert [p["paper_id"] for p in _search(engine_conn, cache, "studies number 12", since)] == ["2611.00012"]
    assert _search(engine_conn, cache, "number zzqxw", since) == []
