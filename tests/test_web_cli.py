"""``paperwire serve`` (a real server process, two workers) and ``paperwire user``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
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
        assert "Daily papers" in home and "229 papers" in home  # the newest listing page's day
        feed = urllib.request.urlopen(base + "/feeds/daily.atom", timeout=10).read().decode()
        assert f"{base}/papers/" in feed  # base_url follows --port when PAPERWIRE_BASE_URL is unset
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    assert f"at http://127.0.0.1:{port}/" in out


def _listening_sockets(port: int) -> int:
    """LISTEN sockets on ``port`` (Linux /proc/net/tcp: local address, state 0A)."""
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            count += 1
    return count


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux only")
def test_serve_workers_each_listen_and_stop_together(tmp_path):
    """Each worker has its own socket (the kernel spreads connections), numpy's BLAS is
    single-threaded in them, a second server cannot join the port, and SIGTERM to the
    parent alone stops every worker."""
    db = demo_db(tmp_path)
    port = free_port()
    env = {**os.environ, "PAPERWIRE_SECRET_KEY": "k" * 32, "PAPERWIRE_EMBEDDER": "none"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "paperwire", "--db", str(db), "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while _listening_sockets(port) < 2:
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "workers did not start"
            time.sleep(0.2)
        for _ in range(8):  # new connections, whichever worker takes them
            assert b'"ok":true' in urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
        children = _children(proc.pid)  # the workers (and multiprocessing's resource tracker)
        environs = [Path(f"/proc/{p}/environ").read_bytes() for p in children]
        assert sum(b"OPENBLAS_NUM_THREADS=1\0" in e for e in environs) >= 2
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and f"port {port} is in use: try --port" in second.stderr
        assert "Traceback" not in second.stderr
        assert _listening_sockets(port) == 2  # it did not join the group
    finally:
        proc.send_signal(signal.SIGTERM)  # the parent only, as a service manager would
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert _listening_sockets(port) == 0
    deadline = time.time() + 10
    while any(Path(f"/proc/{p}").exists() for p in children):  # none left behind
        assert time.time() < deadline, "worker processes outlived the server"
        time.sleep(0.1)


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
