"""Subscriptions: double opt-in over real SMTP, tokens, changes, unsubscribe by mail."""

from __future__ import annotations


import pytest

from digest_support import SmtpServer, activate, add_papers, links_in, make_settings
from paperwire.digest import send as digest_send
from paperwire.digest.subscriptions import (
    Preferences,
    SubscriptionError,
    confirm,
    from_manage_token,
    subscribe,
    unsubscribe,
    unsubscribe_from_mail,
    update_preferences,
)
from paperwire.digest.tokens import TokenError
from paperwire.store import digest as sql


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def _token(url: str) -> str:
    return url.split("token=", 1)[1]


def test_double_opt_in_nothing_before_confirmation(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    add_papers(conn, 5)
    res = subscribe(conn, settings, "Reader@Example.ORG", Preferences("daily", 3))
    assert res.action == "confirmation_queued"
    assert res.subscription["email"] == "Reader@example.org" and res.subscription["status"] == "pending"

    # A digest run before confirmation sends the confirmation mail only.
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.composed == 0 and report.sent == 0
    digest_send.deliver_confirmations(conn, settings)
    assert len(smtp.messages) == 1
    msg = smtp.messages[0].msg
    assert msg["Subject"] == "Confirm your paperwire digest"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(("plain",)).get_content()
    confirm_links = [u for u in links_in(text) if "/digest/confirm?token=" in u]
    assert len(confirm_links) == 1 and confirm_links[0].startswith("https://papers.example/")

    # Still nothing but the confirmation after another run.
    digest_send.run_digests(conn, settings, "daily")
    assert len(smtp.messages) == 1

    sub = confirm(conn, settings, _token(confirm_links[0]))
    assert sub["status"] == "active" and sub["confirmed_at"]
    report = digest_send.run_digests(conn, settings, "daily")
    assert report.sent == 1 and len(smtp.messages) == 2
    assert smtp.messages[1].msg["Subject"].startswith("Daily papers:")
    # Confirming twice is harmless.
    assert confirm(conn, settings, _token(confirm_links[0]))["status"] == "active"


def test_confirmation_token_expires_and_is_signed(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port, digest_confirm_max_age=60)
    subscribe(conn, settings, "a@example.org", Preferences())
    digest_send.deliver_confirmations(conn, settings)
    url = [u for u in links_in(smtp.messages[0].msg.get_body(("plain",)).get_content()) if "confirm" in u][0]
    token = _token(url)
    with pytest.raises(TokenError, match="not valid"):
        confirm(conn, settings, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    with pytest.raises(TokenError, match="not valid"):
        confirm(conn, make_settings(db_path, smtp.port, secret_key="another-secret"), token)
    # A manage token is not a confirmation token.
    with pytest.raises(TokenError):
        from_manage_token(conn, settings, token)
    # Expiry: itsdangerous compares the signed timestamp against the clock.
    import itsdangerous.timed

    real = itsdangerous.timed.TimestampSigner.get_timestamp
    try:
        itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: real(self) + 3600
        with pytest.raises(TokenError, match="expired"):
            confirm(conn, settings, token)
    finally:
        itsdangerous.timed.TimestampSigner.get_timestamp = real
    assert sql.get_subscription_by_email(conn, "a@example.org")["status"] == "pending"


def test_resubscribing_an_active_address_changes_nothing(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    activate(conn, settings, "b@example.org", frequency="weekly", top_n=5)
    res = subscribe(conn, settings, "b@example.org", Preferences("daily", 50))
    assert res.action == "notice_queued"
    assert res.subscription["frequency"] == "weekly" and res.subscription["top_n"] == 5
    again = subscribe(conn, settings, "b@example.org", Preferences("daily", 50))
    assert again.action == "recently_mailed"  # no mail flood from the public form
    digest_send.deliver_confirmations(conn, settings)
    assert len(smtp.messages) == 1
    text = smtp.messages[0].msg.get_body(("plain",)).get_content()
    assert "Nothing was changed" in text and "/digest/manage?token=" in text


def test_validation_messages(conn, db_path):
    settings = make_settings(db_path, 1)
    for bad in ("", "no-at-sign", "a@b", "x@example.org\r\nBcc: victim@example.org", "a b@example.org"):
        with pytest.raises(SubscriptionError, match="valid email"):
            subscribe(conn, settings, bad, Preferences())
    with pytest.raises(SubscriptionError, match="daily or weekly"):
        subscribe(conn, settings, "c@example.org", Preferences("hourly"))
    with pytest.raises(SubscriptionError, match="at least one"):
        subscribe(conn, settings, "c@example.org", Preferences("daily", 0))
    with pytest.raises(SubscriptionError, match="category"):
        subscribe(conn, settings, "c@example.org", Preferences("daily", 1, categories=["<script>"]))
    assert sql.list_subscriptions(conn) == []


def test_manage_change_and_unsubscribe_paths(conn, db_path, smtp):
    settings = make_settings(db_path, smtp.port)
    sub = activate(conn, settings, "d@example.org", top_n=3)
    from paperwire.digest.subscriptions import links

    token = links(settings, sub)["token"]
    changed = update_preferences(conn, settings, token, Preferences(
        "weekly", 0, authors="Ada Lovelace, Alan Turing", categories="cs.LG\ncs.CL", queries="graph neural nets"))
    assert changed["frequency"] == "weekly" and changed["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert changed["categories"] == ["cs.LG", "cs.CL"] and changed["queries"] == ["graph neural nets"]
    assert unsubscribe(conn, settings, token=token)["status"] == "unsubscribed"
    assert unsubscribe(conn, settings, token=token)["status"] == "unsubscribed"  # idempotent
    # Resume from the manage link without a new opt-in.
    assert update_preferences(conn, settings, token, Preferences("daily", 2))["status"] == "active"
    # Unsubscribing by mail to the mailto: address (subject as our link fills it in).
    raw = (f"From: d@example.org\r\nTo: digest@papers.example\r\nSubject: unsubscribe {token}\r\n\r\n").encode()
    assert unsubscribe_from_mail(conn, settings, raw)["status"] == "unsubscribed"
    with pytest.raises(SubscriptionError):
        unsubscribe_from_mail(conn, settings, b"Subject: please stop\r\n\r\nthanks\r\n")
    # Re-subscribing after cancelling needs a fresh opt-in and revokes old links.
    res = subscribe(conn, settings, "d@example.org", Preferences())
    assert res.subscription["status"] == "pending"
    with pytest.raises(TokenError, match="no longer valid"):
        from_manage_token(conn, settings, token)


def test_subscription_links_to_user_account(conn, db_path):
    settings = make_settings(db_path, 1)
    conn.execute("INSERT INTO users (username, email, password_hash, created_at) VALUES "
                 "('eve', 'Eve@Example.org', 'x', '2026-01-01T00:00:00Z')")
    sub = activate(conn, settings, "eve@example.org", personal=True)
    assert sub["user_id"] == conn.execute("SELECT id FROM users WHERE username='eve'").fetchone()[0]
