"""Several paperwire processes on one PostgreSQL store, on loopback: web nodes and workers.

Each node is a real ``paperwire serve`` process on a random 127.0.0.1 port with a cache
folder of its own (``PAPERWIRE_INDEX_DIR``), so its tantivy and vector replicas are its
own, as on separate machines. Workers are real ``paperwire worker`` processes. Output
goes to a log file per process, which the tests read for tracebacks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict:
    """The environment of every process of an instance: fake embedder, no network."""
    env = dict(os.environ)
    env.pop("PAPERWIRE_DB", None)
    env.update({
        "PAPERWIRE_EMBEDDER": "fake",
        "PAPERWIRE_HF_BASE_URL": "none",
        "PAPERWIRE_HARVEST_DELAY": "0",
        "PAPERWIRE_FOLLOW_POLL_S": "2",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def cli(db: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run one ``paperwire`` command on ``db``; fails the test on a non-zero exit."""
    r = subprocess.run([sys.executable, "-m", "paperwire", "--db", db, *args], capture_output=True, text=True,
                       timeout=timeout, env=env or base_env(), cwd=ROOT)
    assert r.returncode == 0, f"paperwire {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


class Proc:
    """A paperwire subprocess with its output in ``log``."""

    def __init__(self, args: list[str], log: Path, env: dict):
        self.log = log
        self._fh = open(log, "wb")
        self.p = subprocess.Popen([sys.executable, "-m", "paperwire", *args], stdout=self._fh,
                                  stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group (uvicorn's children too)."""
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait(10)

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        self._fh.close()


class Node(Proc):
    """One ``paperwire serve`` web node."""

    def __init__(self, db: str, folder: Path, name: str, env: dict, *, workers: int = 1):
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(env, PAPERWIRE_INDEX_DIR=str(folder / "cache"), PAPERWIRE_BASE_URL=self.url)
        super().__init__(["--db", db, "serve", "--port", str(self.port), "--workers", str(workers),
                          "--log-level", "warning"], folder / f"{name}.log", env)
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self, timeout: float = 90) -> None:
        """Until ``/healthz`` answers (the process is up and migrated)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"node exited:\n{self.output()[-3000:]}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"node not ready in {timeout} s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        self.client.close()
        super().stop()


def start_nodes(db: str, folder: Path, env: dict, count: int = 2) -> list[Node]:
    """``count`` web nodes on ``db``, each ready."""
    nodes = [Node(db, folder / f"node{i}", f"node{i}", env) for i in range(count)]
    for n in nodes:
        n.wait_ready()
    return nodes


def start_worker(db: str, folder: Path, name: str, env: dict, *extra: str) -> Proc:
    """A ``paperwire worker`` process (one pass a second)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(env, PAPERWIRE_INDEX_DIR=str(folder / f"{name}-cache"))
    return Proc(["--db", db, "worker", "--interval", "1", *extra], folder / f"{name}.log", env)


def load_demo(db: str, env: dict) -> None:
    """The bundled demo corpus into ``db``, indexed with the fake embedder."""
    cli(db, "demo", "--no-serve", env=env)
    cli(db, "index", "--embedder", "fake", "--no-progress", env=env)


def user_with_token(db: str, env: dict, name: str = "ada") -> str:
    """A site account with a write token; returns the token."""
    import json

    cli(db, "user", "create", name, "--email", f"{name}@example.org", "--password", "correct horse battery",
        env=env)
    r = cli(db, "token", "create", "--user", name, "--scope", "write", "--json", env=env)
    return json.loads(r.stdout)["token"]


def tracebacks(text: str) -> list[str]:
    """Lines that start a Python traceback in a process log."""
    return [line for line in text.splitlines() if line.startswith("Traceback")]
