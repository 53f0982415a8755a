"""The bundled demo corpus: the 498 papers of the seed listing pages and 2,000
dated arXiv records, shipped gzipped inside the package so the demo needs no
network and no files outside the package."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from paperwire.ingest import ImportReport
from paperwire.sources import import_files
from paperwire.store.meta import get_meta, set_meta


def demo_files() -> list[Path]:
    """Paths of the bundled demo files, listing pages first."""
    folder = resources.files("paperwire") / "data" / "demo"
    files = [Path(str(f)) for f in folder.iterdir() if f.name.endswith(".gz")]
    return sorted(files, key=lambda p: (not p.name.startswith("seeds-"), p.name))


def is_demo_loaded(conn: sqlite3.Connection) -> bool:
    return get_meta(conn, "demo_loaded") is not None


def load_demo(conn: sqlite3.Connection, *, progress: bool = True) -> ImportReport | None:
    """Import the demo corpus once; returns None when it was already loaded."""
    if is_demo_loaded(conn):
        return None
    report = import_files(conn, demo_files(), progress=progress)
    set_meta(conn, "demo_loaded", "1")
    return report
