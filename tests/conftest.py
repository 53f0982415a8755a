"""Shared fixtures. Area-specific helpers live in tests/<area>_support.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paperwire.store.db import connect
from pg_support import engine_conn, pg_cluster, pg_url, store_target  # noqa: F401  (both-engines fixtures)

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PAPERWIRE_SHARED", ROOT.parent / "shared"))


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared data folder (seeds, arXiv samples, SciFact)."""
    if not (SHARED / "seeds").is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "paperwire.db"


# PAPERWIRE_TEST_ENGINE=postgresql runs the tests that take `conn` / `demo_conn` on a
# PostgreSQL database instead (the porting gauge: which areas work there yet).
ENGINE = os.environ.get("PAPERWIRE_TEST_ENGINE", "sqlite")


def _store(request, db_path):
    return request.getfixturevalue("pg_url") if ENGINE == "postgresql" else db_path


@pytest.fixture
def store_arg(request, db_path):
    """What `conn` connects to, for a CLI's ``--db`` or a Settings' ``db_path`` in the same
    test: the SQLite file, or under PAPERWIRE_TEST_ENGINE=postgresql the database's URL."""
    return _store(request, db_path)


@pytest.fixture
def conn(request, db_path):
    c = connect(_store(request, db_path))
    yield c
    c.close()


@pytest.fixture
def demo_conn(request, db_path):
    """A database holding the bundled demo corpus."""
    from paperwire.demo import load_demo

    c = connect(_store(request, db_path))
    load_demo(c, progress=False)
    yield c
    c.close()


# The one Chromium of the browser tests (module-scoped; skips without Playwright).
from browser_support import browser  # noqa: E402,F401
