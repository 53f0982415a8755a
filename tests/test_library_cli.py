"""``paperwire library ...`` as the checks run it (real subprocesses on a real SQLite file),
including an import SIGKILLed halfway and rerun."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from web_support import demo_db

FIX = Path(__file__).resolve().parent / "fixtures" / "library"


def run(db, *args, check=True):
    env = dict(os.environ, PAPERWIRE_NEW_PASSWORD="correct horse battery")
    r = subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db), *args], capture_output=True, text=True,
                       env=env, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def db(tmp_path):
    path = demo_db(tmp_path)
    run(path, "user", "create", "alice", "--email", "alice@example.org")
    return path


def listing(db) -> list[dict]:
    return json.loads(run(db, "library", "list", "--user", "alice", "--json").stdout)["papers"]


def test_add_list_remove_export(db):
    r = run(db, "library", "add", "--user", "alice", "0704.0001", "arXiv:0704.0002v1", "--folder", "Reading")
    assert "saved 0704.0001" in r.stdout and "saved 0704.0002" in r.stdout
    r = run(db, "library", "add", "--user", "alice", "0704.0001", "9999.99999", check=False)
    assert r.returncode == 1 and "already saved 0704.0001" in r.stdout and "9999.99999" in r.stderr
    papers = listing(db)
    assert sorted(p["id"] for p in papers) == ["0704.0001", "0704.0002"]
    for p in papers:
        assert set(p) >= {"id", "title", "saved_at", "folders", "tags", "note", "read"}
        assert p["folders"] == ["Reading"] and p["read"] is False and p["note"] == ""
    bib = run(db, "library", "export", "--user", "alice", "--folder", "Reading").stdout
    assert bib.count("@") == 2 and "eprint = {0704.0001}" in bib
    ris = run(db, "library", "export", "--user", "alice", "--format", "ris").stdout
    assert ris.count("TY  - ") == 2 and ris.count("ER  - ") == 2
    csl = json.loads(run(db, "library", "export", "--user", "alice", "--format", "csl-json").stdout)
    assert sorted(i["id"] for i in csl) == ["0704.0001", "0704.0002"]
    r = run(db, "library", "export", "--user", "alice", "--folder", "Nope", check=False)
    assert r.returncode == 1 and "no such folder" in r.stderr
    r = run(db, "library", "remove", "--user", "alice", "0704.0001")
    assert "removed 0704.0001" in r.stdout
    assert [p["id"] for p in listing(db)] == ["0704.0002"]
    r = run(db, "library", "list", "--user", "nobody", check=False)
    assert r.returncode == 1 and "no user 'nobody'" in r.stderr


def test_import_reports_unmatched_and_malformed_by_line(db):
    r = run(db, "library", "import", "--user", "alice", str(FIX / "zotero.bib"))
    assert "8 entries (bibtex): 5 matched, 5 added" in r.stdout
    assert f"{FIX / 'zotero.bib'}:69: skipped malformed entry broken_entry_2007" in r.stderr
    assert "no match for doe_future_2024; arXiv 2401.77777 queued for fetching" in r.stderr
    assert "no match for knuth_art_1997" in r.stderr
    first = listing(db)
    r = run(db, "library", "import", "--user", "alice", str(FIX / "zotero.bib"))
    assert "0 added, 5 already" in r.stdout
    assert listing(db) == first
    r = run(db, "library", "import", "--user", "alice", "--json", str(FIX / "zotero.ris"))
    report = json.loads(r.stdout)
    assert report["malformed"][0]["line"] == 34 and {u["line"] for u in report["unmatched"]} == {50, 57}
    png = db.parent / "cover.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16)
    r = run(db, "library", "import", "--user", "alice", str(png), check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "binary" in r.stderr


def _library_state(db: Path):
    c = sqlite3.connect(db)
    try:
        items = sorted(c.execute("SELECT paper, note, source FROM library_items"))
        tags = sorted(c.execute("SELECT paper, tag FROM library_tags"))
        links = sorted(c.execute("SELECT f.name, i.paper FROM library_folder_items i "
                                 "JOIN library_folders f ON f.id=i.folder_id"))
        folders = sorted(c.execute("SELECT name, slug FROM library_folders"))
        queued = sorted(c.execute("SELECT arxiv_id FROM submissions WHERE status='queued'"))
        return items, tags, links, folders, queued
    finally:
        c.close()


def _count(db: Path) -> int:
    try:
        c = sqlite3.connect(db, timeout=5)
        try:
            return c.execute("SELECT COUNT(*) FROM library_items").fetchone()[0]
        finally:
            c.close()
    except sqlite3.OperationalError:
        return 0


def test_import_killed_halfway_then_rerun_gives_the_same_library(db, tmp_path):
    # A big BibTeX export: every demo paper with an arXiv id, plus tags and unmatched entries.
    c = sqlite3.connect(db)
    ids = [r[0] for r in c.execute("SELECT arxiv_id FROM papers WHERE arxiv_id IS NOT NULL ORDER BY id")]
    c.close()
    parts = []
    for i, aid in enumerate(ids * 3):  # each paper three times: duplicates must not double anything
        parts.append(f"@misc{{k{i},\n  title = {{Entry {i}}},\n  eprint = {{{aid}}},\n  archivePrefix = {{arXiv}},\n"
                     f"  keywords = {{batch{i % 7}, all}},\n}}\n")
        if i % 50 == 0:
            parts.append(f"@misc{{u{i},\n  title = {{Unknown {i}}},\n  url = {{https://arxiv.org/abs/2501.{10000 + i}}},\n}}\n")
    big = tmp_path / "big.bib"
    big.write_text("\n".join(parts))
    clean = tmp_path / "clean.db"
    import shutil

    shutil.copy(db, clean)
    run(clean, "library", "import", "--user", "alice", "--folder", "All", str(big))
    expected = _library_state(clean)
    assert len(expected[0]) == len(ids)

    # Killed right after the second batch of 200 entries committed: part of the library is in.
    env = {**os.environ, "PAPERWIRE_LIBRARY_IMPORT_CRASH_AT": "commit:2"}
    proc = subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db), "library", "import", "--user", "alice",
                           "--folder", "All", str(big)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert 0 < _count(db) < len(ids), _count(db)
    assert _library_state(db)[0] != expected[0]
    run(db, "library", "import", "--user", "alice", "--folder", "All", str(big))
    assert _library_state(db) == expected
