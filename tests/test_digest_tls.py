"""SMTP security settings against a real aiosmtpd: STARTTLS + login, implicit TLS, bad password."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest_support import Handler, activate, add_papers, free_port, make_settings
from paperwire.digest import send as digest_send


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def _server_ctx(cert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def _auth(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"paper" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 on failure


def test_starttls_with_login(conn, db_path, cert, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # our self-signed CA for the client's default context
    handler, port = Handler(), free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, tls_context=_server_ctx(cert),
                     require_starttls=True, authenticator=_auth, auth_required=True)
    ctl.start()
    try:
        add_papers(conn, 3)
        good = make_settings(db_path, port, smtp_security="starttls", smtp_user="paper", smtp_password="s3cret")
        activate(conn, good, "tls@example.org", top_n=2)
        bad = make_settings(db_path, port, smtp_security="starttls", smtp_user="paper", smtp_password="wrong")
        with pytest.raises(digest_send.SmtpConfigError, match="login"):
            digest_send.run_digests(conn, bad, "daily")
        assert handler.messages == []
        # Without STARTTLS the server refuses MAIL FROM (530): a configuration error that
        # stops the run; the digest stays queued instead of failing or counting as a bounce.
        with pytest.raises(digest_send.SmtpConfigError, match="530"):
            digest_send.run_digests(conn, make_settings(db_path, port), "daily")
        assert conn.execute("SELECT state FROM digest_sends").fetchone()[0] in ("pending", "sending")
        report = digest_send.deliver_due(conn, good, "digest")
        assert report.sent == 1 and report.ok
        assert handler.messages[0].rcpt_tos == ["tls@example.org"]
    finally:
        ctl.stop()


def test_implicit_tls(conn, db_path, cert, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    handler, port = Handler(), free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=_server_ctx(cert))
    ctl.start()
    try:
        add_papers(conn, 3)
        settings = make_settings(db_path, port, smtp_security="tls")
        activate(conn, settings, "implicit@example.org", top_n=2)
        assert digest_send.run_digests(conn, settings, "daily").sent == 1
        assert handler.messages[0].rcpt_tos == ["implicit@example.org"]
    finally:
        ctl.stop()
