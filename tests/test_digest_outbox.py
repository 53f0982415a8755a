"""Mail without a mail server: the local outbox (demo), the default preview, votes in the
digest, refusing to send without SMTP, and per-frequency `digest send` summaries."""

from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default as default_policy
from html import unescape

import httpx
import pytest
from click.testing import CliRunner

from digest_support import SECRET, SmtpServer, activate, add_papers, free_port, make_settings
from paperwire.digest import outbox
from paperwire.digest import send as digest_send
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.settings import Settings
from paperwire.store import accounts
from paperwire.store import digest as sql
from paperwire.store import outbox as outbox_sql
from paperwire.store.db import connect
from test_digest_web import Uvicorn, _csrf
from web_support import signup

MONDAY = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _no_smtp_env(monkeypatch):
    """The outbox choice reads PAPERWIRE_SMTP_*: start every test from a clean slate."""
    for name in ("PAPERWIRE_SMTP_HOST", "PAPERWIRE_SMTP_PORT", "PAPERWIRE_SMTP_USER", "PAPERWIRE_MAIL_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)


def _demo_settings(db_path, base: str) -> Settings:
    # What `paperwire demo` has: no SMTP settings at all.
    return Settings(db_path=db_path, base_url=base, secret_key=SECRET, embedder="none", digest_timezone="UTC")


# ---------------------------------------------------------------- the demo: double opt-in via the outbox

def test_demo_double_opt_in_through_the_outbox_over_http(db_path, capsys):
    from paperwire.web.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    conn = connect(db_path)
    add_papers(conn, 4)
    app = create_app(_demo_settings(db_path, base), demo=True, cache=False)
    assert app.state.pw.settings.mail_transport == "outbox"
    assert f"{base}/outbox" in capsys.readouterr().out  # announced on the console
    with Uvicorn(app, port), httpx.Client(base_url=base, timeout=20) as browser:
        assert "The outbox is empty" in browser.get("/outbox").text
        form = browser.get("/digest")
        done = browser.post("/digest/subscribe", data={
            "csrf_token": _csrf(form.text), "email": "newcomer@example.org", "frequency": "weekly", "top_n": "5"})
        assert done.status_code == 200 and "Check the outbox" in done.text and 'href="/outbox"' in done.text

        # The console (stdout of the demo process) names the mail and its confirm link.
        console = capsys.readouterr().out
        printed = re.findall(r"confirm link for newcomer@example\.org: (\S+)", console)
        assert len(printed) == 1 and printed[0].startswith(f"{base}/digest/confirm?token=")

        listing = browser.get("/outbox")
        assert listing.status_code == 200 and "newcomer@example.org" in listing.text
        mail_path = re.search(r'href="(/outbox/\d+)"', listing.text).group(1)
        mail = browser.get(mail_path)
        assert mail.status_code == 200 and "Confirm your paperwire digest" in mail.text
        links = [unescape(u) for u in re.findall(r'<a href="([^"]+)"', mail.text)]
        confirm = [u for u in links if "/digest/confirm?token=" in u]
        assert confirm and confirm[0] == printed[0]  # clickable, and the same link as on the console
        assert sql.get_subscription_by_email(conn, "newcomer@example.org")["status"] == "pending"

        eml = browser.get(mail_path + ".eml")
        assert eml.headers["content-type"].startswith("message/rfc822")
        assert "attachment" in eml.headers["content-disposition"]
        assert message_from_bytes(eml.content, policy=default_policy)["To"] == "newcomer@example.org"

        page = browser.get(confirm[0].removeprefix(base))
        assert page.status_code == 200 and "Confirm subscription" in page.text
        token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
        ok = browser.post("/digest/confirm", data={"token": unescape(token)})
        assert ok.status_code == 200 and "You're subscribed" in unescape(ok.text)
    sub = sql.get_subscription_by_email(conn, "newcomer@example.org")
    assert sub["status"] == "active" and sub["frequency"] == "weekly"
    # Exactly once: one kept mail, its ledger row sent.
    assert outbox_sql.count_mail(conn) == 1 and sql.send_counts(conn) == {"sent": 1}
    conn.close()


def test_outbox_page_is_demo_or_admin_only(db_path):
    from paperwire.web.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    conn = connect(db_path)
    app = create_app(_demo_settings(db_path, base), demo=False, cache=False)
    assert app.state.pw.settings.mail_transport == "smtp"  # outside the demo nothing changes by itself
    with Uvicorn(app, port), httpx.Client(base_url=base, timeout=20) as browser:
        assert browser.get("/outbox").status_code == 404
        assert browser.get("/outbox/1").status_code == 404
        signup(browser, "root")
        assert browser.get("/outbox").status_code == 404  # signed in is not enough
        assert accounts.set_admin(conn, "root")
        page = browser.get("/outbox")
        assert page.status_code == 200 and "Outbox" in page.text
        for bad in ("/outbox/999", "/outbox/abc", "/outbox/1.eml", "/outbox/99999999999999999999999", "/outbox/%C2%B2"):
            assert browser.get(bad).status_code == 404, bad
        assert browser.get("/outbox?page=99999999999").status_code == 200
        assert browser.get("/outbox?page=x").status_code == 422
    conn.close()


def test_outbox_page_escapes_mail_and_links_only_our_own_urls(db_path):
    from paperwire.web.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(db_path, 1, base_url=base, mail_transport="outbox")
    conn = connect(db_path)
    evil = '<script>window.__pwned=1</script><img src=x onerror=alert(1)> "quoted" & more'
    import_records(conn, [PaperRecord(
        title=f"Hostile {evil}", abstract=f"See https://evil.example/steal?x=<b>1</b> and {base}/papers/x.y {evil}",
        source="test", arxiv_id="2611.00077", authors=["Mallory <b>Evil</b>"], categories=["cs.CL"],
        published=(datetime.now(timezone.utc) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"), upvotes=3)])
    activate(conn, settings, "reader@example.org", top_n=5)
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.sent == 1 and outbox_sql.count_mail(conn) == 1
    app = create_app(settings, demo=True, cache=False)
    with Uvicorn(app, port), httpx.Client(base_url=base, timeout=20) as browser:
        listing = browser.get("/outbox").text
        assert "<script>" not in listing and "&lt;script&gt;" in listing  # the subject is escaped
        mail_id = outbox_sql.list_mail(conn)[0]["id"]
        page = browser.get(f"/outbox/{mail_id}").text
    assert "<script>window" not in page and "<img src=x" not in page and "<b>Evil</b>" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page and "Mallory &lt;b&gt;Evil&lt;/b&gt;" in page
    anchors = [unescape(h) for h in re.findall(r'<a href="([^"]+)"', page)]
    assert not any("evil.example" in h for h in anchors)  # shown as text, never a link
    assert "https://evil.example/steal?x=" in page
    assert f"{base}/papers/x.y" in anchors and any("/digest/unsubscribe?token=" in h for h in anchors)
    conn.close()


def test_outbox_keeps_a_mail_once_per_message_id(db_path):
    settings = make_settings(db_path, 1, mail_transport="outbox")
    conn = connect(db_path)
    add_papers(conn, 2)
    activate(conn, settings, "a@example.org", top_n=2)
    digest_send.run_digests(conn, settings, "daily", deliver=False)
    row = sql.due_sends(conn, "digest", "9999")[0]
    lines: list[str] = []
    session = outbox.OutboxSession(settings, conn, echo=lines.append)
    for _ in range(2):  # e.g. an in-doubt mail resent with --resend-in-doubt
        session.transact("digest@papers.example", row["recipient"], row["message"],
                         before_dot=lambda: None, crash=lambda point: None)
    assert outbox_sql.count_mail(conn) == 1 and len(lines) == 2 and lines[0] == lines[1]
    conn.close()


def test_demo_keeps_smtp_when_a_server_is_configured(db_path, monkeypatch):
    base = Settings(db_path=db_path, secret_key=SECRET)
    assert outbox.demo_settings(base, announce=False).mail_transport == "outbox"
    assert outbox.demo_settings(make_settings(db_path, 2525), announce=False).mail_transport == "smtp"
    monkeypatch.setenv("PAPERWIRE_SMTP_HOST", "127.0.0.1")  # a local MTA named explicitly
    assert outbox.demo_settings(base, announce=False).mail_transport == "smtp"


# ---------------------------------------------------------------- production refuses without SMTP

def _port_25_open() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 25)) == 0


def test_digest_send_without_smtp_settings_refuses_clearly(db_path, monkeypatch):
    from paperwire.cli import cli

    if _port_25_open():
        pytest.skip("something listens on 127.0.0.1:25 here, which is a configured local MTA")
    conn = connect(db_path)
    settings = make_settings(db_path, 1)
    add_papers(conn, 3)
    activate(conn, settings, "a@example.org", top_n=3)
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    out = CliRunner().invoke(cli, ["--db", str(db_path), "digest", "send", "--no-wait"])
    assert out.exit_code == 1
    assert "no SMTP server is configured" in out.output and "PAPERWIRE_SMTP_HOST" in out.output
    assert "no digest was composed or sent" in out.output
    assert sql.send_counts(conn) == {}  # nothing composed, no papers reserved
    assert conn.execute("SELECT COUNT(*) FROM digest_sent_papers").fetchone()[0] == 0
    # An explicit choice of the outbox is honoured (and read back at /outbox).
    monkeypatch.setenv("PAPERWIRE_MAIL_TRANSPORT", "outbox")
    out = CliRunner().invoke(cli, ["--db", str(db_path), "digest", "send", "--frequency", "daily"])
    assert out.exit_code == 0, out.output
    assert outbox_sql.count_mail(conn) == 1 and sql.send_counts(conn) == {"sent": 1}
    conn.close()


def test_unknown_mail_transport_is_a_config_error(db_path):
    settings = make_settings(db_path, 1, mail_transport="pigeon")
    with pytest.raises(digest_send.SmtpConfigError, match="PAPERWIRE_MAIL_TRANSPORT must be smtp or outbox"):
        digest_send.run_digests(connect(db_path), settings, "daily")


# ---------------------------------------------------------------- preview: the default digest; votes

def test_preview_without_subscription_shows_the_default_digest_with_votes(db_path, tmp_path, monkeypatch):
    from paperwire.cli import cli

    conn = connect(db_path)
    add_papers(conn, 12)  # Paper i has i upvotes
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(db_path), "digest", "preview", "nobody@example.org"])
    assert out.exit_code == 0, out.output
    assert "nobody@example.org has no subscription: this is the default digest (daily, trending top 10)" in out.output
    assert "Your daily paperwire digest: 10 new papers" in out.output
    assert "Paper 12: a study of things" in out.output and "Paper 2: a study" not in out.output
    assert "\u25b2 12 upvotes \u00b7 Author 12, Ada Lovelace" in out.output
    html = tmp_path / "d.html"
    assert runner.invoke(cli, ["--db", str(db_path), "digest", "preview", "nobody@example.org",
                               "-o", str(html)]).exit_code == 0
    text = html.read_text()
    assert "&#9650;&nbsp;12</span> &middot; Author 12, Ada Lovelace" in text
    assert sql.send_counts(conn) == {} and sql.list_subscriptions(conn) == []  # recorded nothing
    # Nothing in the window: say so, and where the papers are.
    later = runner.invoke(cli, ["--db", str(db_path), "digest", "preview", "nobody@example.org",
                                "--now", "2030-01-01"])
    assert later.exit_code == 0 and "nothing new for daily:2030-01-01" in later.output
    assert "the newest papers are from" in later.output
    conn.close()


def test_default_preview_of_an_old_corpus_shows_the_newest_papers(db_path, monkeypatch):
    from paperwire.cli import cli

    conn = connect(db_path)
    add_papers(conn, 3, days_ago=40)  # like the demo corpus: nothing in the last days
    newest = sql.latest_feed_date(conn)
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    out = CliRunner().invoke(cli, ["--db", str(db_path), "digest", "preview", "new@example.org"])
    assert out.exit_code == 0, out.output
    assert f"this is the default digest (daily, trending top 10), as of {newest}" in out.output
    assert "Your daily paperwire digest: 3 new papers" in out.output
    # A real subscriber's preview stays truthful: nothing new now.
    activate(conn, make_settings(db_path, 1), "sub@example.org", top_n=5)
    sub = CliRunner().invoke(cli, ["--db", str(db_path), "digest", "preview", "sub@example.org"])
    assert sub.exit_code == 0 and "nothing new for daily:" in sub.output and "default digest" not in sub.output
    conn.close()


# ---------------------------------------------------------------- summaries per frequency

def _send(db_path, port: int, *args: str):
    from paperwire.cli import cli

    env = {"PAPERWIRE_SECRET_KEY": SECRET, "PAPERWIRE_SMTP_HOST": "127.0.0.1", "PAPERWIRE_SMTP_PORT": str(port),
           "PAPERWIRE_DIGEST_TIMEZONE": "UTC", "PAPERWIRE_MAIL_RATE_PER_MINUTE": "0",
           "PAPERWIRE_MAIL_RETRY_BASE_SECONDS": "0.05", "PAPERWIRE_SMTP_TIMEOUT": "5"}
    return CliRunner().invoke(cli, ["--db", str(db_path), "digest", "send", "--now", MONDAY.isoformat(), *args],
                              env=env)


def test_send_summary_counts_each_frequency_separately(db_path):
    conn = connect(db_path)
    settings = make_settings(db_path, 1)
    add_papers(conn, 6, now=MONDAY)
    for i in range(5):
        activate(conn, settings, f"d{i}@example.org", frequency="daily", top_n=3)
    for i in range(2):
        activate(conn, settings, f"w{i}@example.org", frequency="weekly", top_n=3)
    activate(conn, settings, "empty@example.org", frequency="weekly", top_n=0, queries=["no such words"])

    port = free_port()  # nothing listens: every mail stays queued
    down = _send(db_path, port, "--no-wait")
    assert down.exit_code == 1
    assert "daily:2026-11-23: 5 composed, 0 with nothing new, 0 sent, 0 failed, 5 deferred, 0 in doubt" in down.output
    assert "weekly:2026-W48: 2 composed, 1 with nothing new, 0 sent, 0 failed, 2 deferred, 0 in doubt" in down.output

    with SmtpServer() as smtp:
        up = _send(db_path, smtp.port)
        assert up.exit_code == 0, up.output
        assert "daily:2026-11-23: 0 composed, 0 with nothing new, 5 sent, 0 failed, 0 deferred, 0 in doubt" in up.output
        assert "weekly:2026-W48: 0 composed, 1 with nothing new, 2 sent, 0 failed, 0 deferred, 0 in doubt" in up.output
        assert len(smtp.messages) == 7
        # One frequency at a time leaves the other's mail alone (and out of its counts).
        again = _send(db_path, smtp.port, "--frequency", "weekly")
        assert "weekly:2026-W48: 0 composed, 1 with nothing new, 0 sent, 0 failed, 0 deferred" in again.output
        assert "daily:" not in again.output and len(smtp.messages) == 7
    conn.close()


# ---------------------------------------------------------------- exactly once through the outbox

def _outbox_send(db_path, crash: str | None = None, *extra: str):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERWIRE_")}
    env.update(PAPERWIRE_SECRET_KEY=SECRET, PAPERWIRE_MAIL_TRANSPORT="outbox", PAPERWIRE_DIGEST_TIMEZONE="UTC",
               PAPERWIRE_BASE_URL="https://papers.example", PAPERWIRE_DIGEST_COMPOSE_BATCH="2")
    if crash:
        env["PAPERWIRE_DIGEST_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db_path), "digest", "send",
                           "--frequency", "daily", *extra], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("crash", ["sending:2", "in_doubt:2", "dot:3", "sent:1"])
def test_sigkill_with_the_outbox_then_rerun_keeps_each_digest_once(db_path, crash):
    import signal

    conn = connect(db_path)
    add_papers(conn, 6)
    settings = make_settings(db_path, 1)
    emails = [f"o{i}@example.org" for i in range(4)]
    for email in emails:
        activate(conn, settings, email, top_n=2)
    first = _outbox_send(db_path, crash)
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stdout, first.stderr)
    second = _outbox_send(db_path)
    kept = {e: 0 for e in emails}
    for m in outbox_sql.list_mail(conn):
        kept[m["recipient"]] += 1
    states = sql.send_counts(conn)
    assert set(states) <= {"sent", "in_doubt"} and sum(states.values()) == len(emails)
    # Never twice; only a kill between the in_doubt commit and the write loses one (reported).
    lost = 1 if crash.startswith("in_doubt") else 0
    assert sorted(kept.values()) == [0] * lost + [1] * (len(emails) - lost), (kept, second.stdout)
    assert states.get("in_doubt", 0) == (1 if crash.startswith(("in_doubt", "dot")) else 0)
    # The operator's choice of a possible duplicate over a loss: still one per Message-ID.
    third = _outbox_send(db_path, None, "--resend-in-doubt")
    assert third.returncode == 0, third.stdout + third.stderr
    kept = {e: 0 for e in emails}
    for m in outbox_sql.list_mail(conn):
        kept[m["recipient"]] += 1
    assert kept == {e: 1 for e in emails} and sql.send_counts(conn) == {"sent": len(emails)}
    conn.close()
