"""Helpers for the ops tests (tests/test_ops.py, tests/test_ops_pg.py): Prometheus text
parsed into samples, and a real ``paperwire serve`` subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from web_support import SECRET, free_port


def samples(text: str) -> dict:
    """{(name, sorted label items): value} of a Prometheus text page."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def requests_of(samples: dict, route: str, status: str, method: str = "GET") -> float:
    return samples.get(("paperwire_http_requests_total",
                        (("method", method), ("route", route), ("status", status))), 0.0)


def serve(db, env: dict, log: Path, *serve_args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "paperwire", "--db", str(db), "serve", "--port", str(port),
                             *serve_args],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.time() < deadline, "server did not start"
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def server_env(**extra) -> dict:
    env = {**os.environ, "PAPERWIRE_SECRET_KEY": SECRET, "PAPERWIRE_EMBEDDER": "none", **extra}
    for k in ("PAPERWIRE_BASE_URL", "PROMETHEUS_MULTIPROC_DIR", "PAPERWIRE_METRICS_ALLOW", "PAPERWIRE_METRICS_TOKEN"):
        env.pop(k, None)
    return env
