"""A throwaway PostgreSQL cluster for the tests, and the both-engines store fixture.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it when
missing). The session starts one cluster in a temporary directory owned by the
``postgres`` user (``initdb`` refuses to run as root), listening on a random loopback
port with trust auth for loopback only, and stops and deletes it at the end. Each test
gets a database of its own. Without the binaries the PostgreSQL tests skip with the
reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest


def pg_bin_dir() -> Path | None:
    """The directory holding initdb/pg_ctl: $PAPERWIRE_PG_BIN, Debian's newest, or PATH."""
    env = os.environ.get("PAPERWIRE_PG_BIN")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A running throwaway cluster: :meth:`url` names a database in it."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="paperwire-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)

    def start(self) -> "PgCluster":
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--auth=trust", "--no-sync", "--no-instructions")
        # Loopback TCP only, trust there; no other host may connect.
        (self.data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        for attempt in range(5):
            self.port = _free_port()
            with open(self.data / "postgresql.auto.conf", "w") as f:
                f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                        f"unix_socket_directories = '{self.root}'\n"
                        # A test cluster: durability is not what is tested here.
                        "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                        "max_connections = 200\nshared_buffers = 32MB\n")
            if self._as_postgres:
                shutil.chown(self.data / "pg_hba.conf", "postgres", "postgres")
                shutil.chown(self.data / "postgresql.auto.conf", "postgres", "postgres")
            r = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                          "-w", "-t", "30", "start", check=False)
            if r.returncode == 0:
                return self
            time.sleep(0.2 * (attempt + 1))  # port taken in the meantime: another one
        log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else r.stderr
        raise RuntimeError(f"PostgreSQL did not start: {log[-2000:]}")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url(name)


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's throwaway PostgreSQL cluster (skips, or fails in CI, without PostgreSQL)."""
    bindir = pg_bin_dir()
    if bindir is None or not (bindir / "initdb").exists():
        _missing("PostgreSQL binaries not found (apt-get install postgresql, or set PAPERWIRE_PG_BIN)")
    try:
        import psycopg  # noqa: F401  (the driver the store needs)
    except ImportError:
        _missing("psycopg is not installed (pip install 'paperwire[postgres]')")
    cluster = PgCluster(bindir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    from paperwire.store.dialect import close_pools

    close_pools()
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster, tmp_path_factory, monkeypatch):
    """The URL of a fresh, empty database in the session cluster. Its node caches
    (tantivy, vectors) go to a temp folder, for this process and the CLI it starts."""
    from paperwire.index import fastlex
    from paperwire.store.dialect import close_pools

    monkeypatch.setenv("PAPERWIRE_INDEX_DIR", str(tmp_path_factory.mktemp("pg-index")))
    url = pg_cluster.create_database()
    yield url
    fastlex.close_all()
    close_pools()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path) -> str:
    """What ``connect`` is given, once per engine: a SQLite file, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "paperwire.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine_conn(store_target):
    """A migrated store connection, once per engine (the store tests' parametrised fixture)."""
    from paperwire.store.db import connect

    c = connect(store_target)
    yield c
    c.close()
