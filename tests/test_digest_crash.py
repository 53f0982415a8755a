"""SIGKILL a real ``paperwire digest send`` at every step of the protocol, rerun, and check
that every subscriber got exactly one digest for the period (see paperwire.digest.send)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from digest_support import SECRET, SmtpServer, activate, add_papers, make_settings
from paperwire.store import digest as sql
from paperwire.store.db import connect

SUBSCRIBERS = [f"s{i}@example.org" for i in range(6)]


def _env(port: int, crash: str | None = None) -> dict:
    env = dict(os.environ)
    env.update(PAPERWIRE_SECRET_KEY=SECRET, PAPERWIRE_SMTP_HOST="127.0.0.1", PAPERWIRE_SMTP_PORT=str(port),
               PAPERWIRE_DIGEST_TIMEZONE="UTC", PAPERWIRE_MAIL_RATE_PER_MINUTE="0",
               PAPERWIRE_MAIL_RETRY_BASE_SECONDS="0.05", PAPERWIRE_BASE_URL="https://papers.example",
               PAPERWIRE_MAIL_FROM="paperwire <digest@papers.example>")
    env.pop("PAPERWIRE_DIGEST_CRASH_AT", None)
    if crash:
        env["PAPERWIRE_DIGEST_CRASH_AT"] = crash
    env["PAPERWIRE_DIGEST_COMPOSE_BATCH"] = "2"  # 3 compose transactions for 6 subscribers
    return env


def _send(db_path, port: int, crash: str | None = None, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db_path), "digest", "send",
                           "--frequency", "daily", *extra], env=_env(port, crash), capture_output=True,
                          text=True, timeout=120)


def _setup(db_path, port: int) -> None:
    conn = connect(db_path)
    add_papers(conn, 8)
    settings = make_settings(db_path, port)
    for email in SUBSCRIBERS:
        activate(conn, settings, email, top_n=3)
    conn.close()


def _digests_per_recipient(server: SmtpServer) -> dict[str, int]:
    counts = {e: 0 for e in SUBSCRIBERS}
    for m in server.messages:
        if m.msg["Subject"].startswith("Daily papers:"):
            counts[m.rcpt_tos[0]] += 1
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["composed:2", "sending:1", "sending:3", "data:2", "dot:1", "dot:4",
                                   "reply:2", "sent:3"])
def test_sigkill_at_each_step_then_rerun_delivers_exactly_once(tmp_path, crash):
    db_path = tmp_path / "pw.db"
    with SmtpServer() as server:
        _setup(db_path, server.port)
        first = _send(db_path, server.port, crash)
        assert first.returncode == -signal.SIGKILL, (first.returncode, first.stdout, first.stderr)
        time.sleep(0.2)  # let the server finish a message whose final "." it already has
        second = _send(db_path, server.port)
        assert second.returncode == 0, second.stdout + second.stderr
        third = _send(db_path, server.port)  # and once more: nothing new for this period
        assert third.returncode == 0 and "0 sent" in third.stdout
        server.wait_for(len(SUBSCRIBERS), timeout=5)
        assert _digests_per_recipient(server) == {e: 1 for e in SUBSCRIBERS}
    conn = connect(db_path)
    states = sql.send_counts(conn)
    conn.close()
    assert set(states) <= {"sent", "in_doubt"} and sum(states.values()) == len(SUBSCRIBERS)


@pytest.mark.slow
def test_killed_by_the_server_side_after_n_messages(tmp_path):
    """An outside kill at an arbitrary moment: the SMTP server SIGKILLs the sender as soon
    as it has accepted the 3rd message, before the client reads the 250."""
    db_path = tmp_path / "pw.db"
    with SmtpServer() as server:
        _setup(db_path, server.port)
        proc = subprocess.Popen([sys.executable, "-m", "paperwire", "--db", str(db_path), "digest", "send",
                                 "--frequency", "daily"], env=_env(server.port),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def kill_on_third(_msg):
            if len(server.messages) == 3:
                os.kill(proc.pid, signal.SIGKILL)

        server.handler.on_message = kill_on_third
        proc.wait(timeout=120)
        assert proc.returncode == -signal.SIGKILL
        server.handler.on_message = None
        assert len(server.messages) == 3
        rerun = _send(db_path, server.port)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert _digests_per_recipient(server) == {e: 1 for e in SUBSCRIBERS}


@pytest.mark.slow
def test_kill_between_in_doubt_commit_and_final_dot_is_reported_not_resent(tmp_path):
    """The one window we cannot close (documented trade-off): the row says in_doubt but the
    '.' never left. The rerun does not resend (at-most-once there), the ledger shows it,
    and --resend-in-doubt delivers it for an operator who chooses so."""
    db_path = tmp_path / "pw.db"
    with SmtpServer() as server:
        _setup(db_path, server.port)
        assert _send(db_path, server.port, "in_doubt:2").returncode == -signal.SIGKILL
        assert _send(db_path, server.port).returncode == 0
        counts = _digests_per_recipient(server)
        assert sorted(counts.values()) == [0] + [1] * (len(SUBSCRIBERS) - 1)
        conn = connect(db_path)
        assert sql.send_counts(conn) == {"sent": len(SUBSCRIBERS) - 1, "in_doubt": 1}
        out = _send(db_path, server.port, None, "--resend-in-doubt")
        assert out.returncode == 0, out.stdout + out.stderr
        assert _digests_per_recipient(server) == {e: 1 for e in SUBSCRIBERS}
        assert sql.send_counts(conn) == {"sent": len(SUBSCRIBERS)}
        conn.close()
