"""Shared fixtures. Area-specific helpers live in tests/<area>_support.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paperwire.store.db import connect

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


@pytest.fixture
def conn(db_path):
    c = connect(db_path)
    yield c
    c.close()


@pytest.fixture
def demo_conn(db_path):
    """A database holding the bundled demo corpus."""
    from paperwire.demo import load_demo

    c = connect(db_path)
    load_demo(c, progress=False)
    yield c
    c.close()
