"""Delivery over a real SMTP server: retries, permanent failures, rate limit, connection reuse."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest_support import SECRET, SmtpServer, activate, add_papers, free_port, make_settings
from paperwire.digest import send as digest_send
from paperwire.digest.send import RateLimiter, backoff_seconds
from paperwire.store import digest as sql


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def _states(conn) -> dict:
    return dict(conn.execute("SELECT recipient, state FROM digest_sends").fetchall())


def test_4xx_then_success_is_retried_with_backoff(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 4)
    activate(conn, settings, "ok@example.org", top_n=2)
    activate(conn, settings, "grey@example.org", top_n=2)
    smtp.handler.policy = lambda rcpt, n: "451 4.7.1 try again later" if rcpt == "grey@example.org" and n <= 2 else None
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.sent == 2 and report.retried == 2 and not report.failed and report.ok
    assert smtp.handler.attempts["grey@example.org"] == 3
    assert len(smtp.handler.to("grey@example.org")) == 1 and len(smtp.handler.to("ok@example.org")) == 1
    row = conn.execute("SELECT attempts, last_error, state FROM digest_sends WHERE recipient='grey@example.org'").fetchone()
    assert row["attempts"] == 3 and row["state"] == "sent" and "451" in row["last_error"]


def test_5xx_is_permanent_recorded_and_reported(conn, store_arg, smtp, monkeypatch):
    settings = make_settings(store_arg, smtp.port, digest_bounce_threshold=2)
    add_papers(conn, 4)
    activate(conn, settings, "ok@example.org", top_n=2)
    bad = activate(conn, settings, "gone@example.org", top_n=2)
    smtp.handler.policy = lambda rcpt, n: "550 5.1.1 no such mailbox" if rcpt == "gone@example.org" else None
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.sent == 1 and len(report.failed) == 1 and not report.ok
    assert report.failed[0]["recipient"] == "gone@example.org" and "550" in report.failed[0]["error"]
    assert smtp.handler.attempts["gone@example.org"] == 1  # no retry of a permanent error
    assert _states(conn) == {"ok@example.org": "sent", "gone@example.org": "failed"}
    # The papers were never delivered: they go back to the pool.
    assert conn.execute("SELECT COUNT(*) FROM digest_sent_papers WHERE subscription=?", (bad["id"],)).fetchone()[0] == 0
    # The CLI reports it and exits non-zero.
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    monkeypatch.setenv("PAPERWIRE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("PAPERWIRE_DIGEST_TIMEZONE", "UTC")
    monkeypatch.setenv("PAPERWIRE_DIGEST_BOUNCE_THRESHOLD", "2")
    from paperwire.cli import cli

    add_papers(conn, 2, start=50)
    from datetime import datetime, timedelta, timezone

    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    out = CliRunner().invoke(cli, ["--db", str(store_arg), "digest", "send", "--frequency", "daily", "--now", tomorrow])
    assert out.exit_code == 1
    assert "failed: gone@example.org: 550" in out.output
    assert sql.get_subscription(conn, bad["id"])["status"] == "bounced"  # 2 consecutive permanent failures
    out = CliRunner().invoke(cli, ["--db", str(store_arg), "digest", "list", "--problems"])
    assert out.exit_code == 0 and out.output.count("gone@example.org") == 2 and "550 5.1.1" in out.output


def test_connection_refused_then_server_comes_up(conn, db_path):
    port = free_port()
    settings = make_settings(db_path, port, mail_retry_base_seconds=0.2)
    add_papers(conn, 3)
    activate(conn, settings, "late@example.org", top_n=2)
    server = SmtpServer()
    server.port = port
    from aiosmtpd.controller import Controller

    server.controller = Controller(server.handler, hostname="127.0.0.1", port=port)
    starter = threading.Timer(0.5, server.controller.start)
    starter.start()
    try:
        report = digest_send.run_digests(conn, settings, "daily")
        assert report.sent == 1 and report.ok
        assert any("cannot reach SMTP server" in n for n in report.notes)
        assert len(server.messages) == 1
    finally:
        starter.join()
        server.controller.stop()


def test_unreachable_server_defers_and_reports(conn, db_path):
    settings = make_settings(db_path, free_port(), mail_retry_base_seconds=0.01, mail_max_attempts=2)
    add_papers(conn, 3)
    activate(conn, settings, "x@example.org", top_n=2)
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.composed == 1 and report.sent == 0 and report.deferred == 1 and not report.ok
    assert _states(conn) == {"x@example.org": "pending"}  # kept for the next run, not dropped


def test_one_connection_for_many_messages(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 3)
    for i in range(5):
        activate(conn, settings, f"r{i}@example.org", top_n=1)
    connects = []
    orig = digest_send.SmtpSession.ensure

    def counting(self):
        if self.smtp is None:
            connects.append(1)
        return orig(self)

    digest_send.SmtpSession.ensure = counting
    try:
        assert digest_send.run_digests(conn, settings, "daily").sent == 5
    finally:
        digest_send.SmtpSession.ensure = orig
    assert len(connects) == 1 and len(smtp.messages) == 5
    ids = {m.msg["Message-ID"] for m in smtp.messages}
    assert len(ids) == 5


def test_rate_limiter_spacing_and_backoff():
    clock = [0.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        clock[0] += s

    lim = RateLimiter(120, clock=lambda: clock[0], sleep=sleep)  # one per 0.5 s
    for _ in range(4):
        lim.wait()
    assert slept == [0.5, 0.5, 0.5]
    RateLimiter(0, sleep=lambda s: pytest.fail("unlimited must not sleep")).wait()
    from paperwire.settings import Settings

    s = Settings(db_path=":memory:", mail_retry_base_seconds=30)
    assert [backoff_seconds(s, n) for n in (1, 2, 3)] == [30, 60, 120]


def test_rate_limit_applies_to_real_sends(conn, db_path, smtp, monkeypatch):
    settings = make_settings(db_path, smtp.port, mail_rate_per_minute=6000)
    add_papers(conn, 2)
    for i in range(3):
        activate(conn, settings, f"q{i}@example.org", top_n=1)
    waits = []
    monkeypatch.setattr(digest_send.RateLimiter, "wait", lambda self: waits.append(self.interval))
    assert digest_send.run_digests(conn, settings, "daily").sent == 3
    assert waits == [0.01, 0.01, 0.01]


def test_unsubscribed_after_compose_is_not_sent(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 2)
    activate(conn, settings, "bye@example.org", top_n=1)
    digest_send.run_digests(conn, settings, "daily", deliver=False)
    from paperwire.digest.subscriptions import unsubscribe

    unsubscribe(conn, settings, email="bye@example.org")
    report = digest_send.deliver_due(conn, settings, "digest")
    assert report.sent == 0 and smtp.messages == []
    assert _states(conn) == {"bye@example.org": "failed"}


def test_cli_subscribe_confirm_send_list(db_path, smtp, monkeypatch):
    from paperwire.cli import cli
    from paperwire.store.db import connect

    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    monkeypatch.setenv("PAPERWIRE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("PAPERWIRE_BASE_URL", "https://papers.example")
    runner = CliRunner()
    db = ["--db", str(db_path)]
    c = connect(db_path)
    add_papers(c, 3)
    out = runner.invoke(cli, db + ["digest", "subscribe", "cli@example.org", "--frequency", "weekly", "--top", "2",
                                   "--category", "cs.CL"])
    assert out.exit_code == 0, out.output
    assert "confirmation mail sent" in out.output and len(smtp.messages) == 1
    url = [l for l in smtp.messages[0].msg.get_body(("plain",)).get_content().split() if "confirm?token=" in l][0]
    out = runner.invoke(cli, db + ["digest", "confirm", url])
    assert out.exit_code == 0 and "confirmed (weekly digest)" in out.output, out.output
    out = runner.invoke(cli, db + ["digest", "send", "--frequency", "weekly", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["runs"][0]["sent"] == 1 and len(smtp.messages) == 2
    out = runner.invoke(cli, db + ["digest", "list"])
    assert "cli@example.org" in out.output and "active" in out.output and "cat:cs.CL" in out.output
    out = runner.invoke(cli, db + ["digest", "unsubscribe", "cli@example.org"])
    assert out.exit_code == 0 and "unsubscribed" in out.output
    # Without PAPERWIRE_SECRET_KEY the command signs with the key the web app uses too: the
    # one kept beside the database (a key made up for one process would be refused).
    monkeypatch.delenv("PAPERWIRE_SECRET_KEY")
    out = runner.invoke(cli, db + ["digest", "send"])
    assert out.exit_code == 0, out.output
    from paperwire.settings import load_settings, secret_key_file

    assert load_settings(db[1]).secret_key_source == "file" and secret_key_file(Path(db[1])).exists()
    from paperwire.cli.digest import _need_secret
    from paperwire.settings import Settings

    with pytest.raises(SystemExit):  # nowhere to keep a key: mail links would die, so refuse
        _need_secret(Settings(db_path=Path(":memory:")))
    c.close()


def test_one_failing_compose_does_not_stop_the_others(conn, db_path, smtp, monkeypatch):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 3)
    for email in ("a1@example.org", "boom@example.org", "a2@example.org"):
        activate(conn, settings, email, top_n=1)
    real = digest_send.render.digest_message

    def flaky(settings, digest, **kw):
        if digest.subscription["email"] == "boom@example.org":
            raise ValueError("template exploded")
        return real(settings, digest, **kw)

    monkeypatch.setattr(digest_send.render, "digest_message", flaky)
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.sent == 2 and not report.ok
    assert report.failed == [{"recipient": "boom@example.org", "period": report.period,
                              "error": "compose failed: ValueError: template exploded"}]
    # Nothing recorded for it: the next run tries again.
    monkeypatch.setattr(digest_send.render, "digest_message", real)
    assert digest_send.run_digests(conn, settings, "daily").sent == 1
    assert len(smtp.handler.to("boom@example.org")) == 1
