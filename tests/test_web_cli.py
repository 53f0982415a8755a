"""``paperwire serve`` (a real server process, two workers) and ``paperwire user``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from paperwire.cli import cli
from paperwire.store.db import connect
from web_support import demo_db, free_port


def test_serve_with_two_workers_shares_sessions(tmp_path):
    db = demo_db(tmp_path)
    port = free_port()
    env = {**os.environ, "PAPERWIRE_SECRET_KEY": "k" * 32, "PAPERWIRE_EMBEDDER": "none"}
    env.pop("PAPERWIRE_BASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "paperwire", "--db", str(db), "serve", "--port", str(port),
                             "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                body = urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.time() < deadline, "server did not start"
                time.sleep(0.2)
        assert b'"ok":true' in body
        home = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert "Daily papers" in home and "498 papers" in home
        feed = urllib.request.urlopen(base + "/feeds/daily.atom", timeout=10).read().decode()
        assert f"{base}/papers/" in feed  # base_url follows --port when PAPERWIRE_BASE_URL is unset
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    assert f"at http://127.0.0.1:{port}/" in out


def test_user_commands(tmp_path):
    db = tmp_path / "u.db"
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", str(db), "user", "create", "root", "--email", "root@example.org"],
                      env={"PAPERWIRE_NEW_PASSWORD": "a good long password"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--db", str(db), "user", "make-admin", "root"])
    assert r.exit_code == 0 and "is an admin" in r.output
    assert connect(db).execute("SELECT is_admin FROM users WHERE username='root'").fetchone()[0] == 1
    r = runner.invoke(cli, ["--db", str(db), "user", "make-admin", "nobody"])
    assert r.exit_code == 1 and "no user 'nobody'" in r.output
    r = runner.invoke(cli, ["--db", str(db), "user", "create", "xy", "--email", "bad"],
                      env={"PAPERWIRE_NEW_PASSWORD": "a good long password"})
    assert r.exit_code == 1 and "e-mail" in r.output
    r = runner.invoke(cli, ["--db", str(db), "user", "list", "--json"])
    assert '"username": "root"' in r.output
