"""The core commands through a real subprocess: stats, show, export, demo, progress."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import bibtexparser
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args, db=None, env=None, timeout=180):
    cmd = [sys.executable, "-m", "paperwire"]
    if db is not None:
        cmd += ["--db", str(db)]
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.fixture
def loaded_db(tmp_path, shared_dir):
    db = tmp_path / "p.db"
    r = run("import", str(shared_dir / "seeds"), str(shared_dir / "data/arxiv/arxiv-metadata-200.jsonl"),
            str(FIXTURES / "hf_daily_papers.json"), db=db)
    assert r.returncode == 0, r.stderr
    return db


def test_import_twice_says_nothing_changed(tmp_path, shared_dir):
    db = tmp_path / "p.db"
    first = run("import", str(shared_dir / "seeds"), db=db)
    assert first.stdout.strip() == "498 added, 0 updated, 0 unchanged, 81 duplicates within the input, 0 skipped"
    again = run("import", str(shared_dir / "seeds"), db=db)
    assert again.stdout.strip() == "0 added, 0 updated, 579 unchanged, 0 skipped"


def test_stats_json(loaded_db):
    r = run("stats", "--json", db=loaded_db)
    s = json.loads(r.stdout)
    assert s["papers"] == 498 + 200 + 2  # the fixture's CBM entry merges with its listing page
    assert s["with_arxiv_id"] == 203
    # The merged CBM paper keeps the source that first brought it.
    assert s["by_source"] == {"listing": 498, "arxiv-snapshot": 200, "hf-daily": 2}
    assert s["by_year"]["2007"] == 200 and s["by_year"]["2024"] == 3
    human = run("stats", db=loaded_db).stdout
    assert "papers:" in human and "by year:" in human


def test_show_by_id_version_and_alias(loaded_db):
    r = run("show", "0704.0001v2", "--json", db=loaded_db)
    p = json.loads(r.stdout)
    assert p["id"] == "0704.0001" and p["authors"][0] == "C. Balázs"
    assert "record_hash" not in p
    text = run("show", "0704.0001", db=loaded_db).stdout
    assert "Calculation of prompt diphoton" in text and "https://arxiv.org/pdf/0704.0001" in text
    missing = run("show", "9999.99999", db=loaded_db)
    assert missing.returncode == 1 and "no paper" in missing.stderr and "Traceback" not in missing.stderr


def test_export_jsonl_roundtrips(tmp_path, loaded_db):
    out = tmp_path / "all.jsonl"
    assert run("export", "-o", str(out), db=loaded_db).returncode == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 700
    first = json.loads(lines[0])
    assert {"id", "title", "abstract", "authors", "categories", "published", "content_hash"} <= set(first)


def test_export_bibtex_is_valid(tmp_path, loaded_db):
    tricky = tmp_path / "tricky.jsonl"
    rec = {"id": "2401.00042", "title": "100% {unbalanced & odd_chars} $x^2$ #1 ~ \\LaTeX", "abstract": "Uses 50% less & more.",
           "authors": "Zoë Ångström, J. O'Neil", "categories": "cs.CL cs.LG",
           "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}], "update_date": "2024-01-01",
           "authors_parsed": [["Ångström", "Zoë", ""], ["O'Neil", "J.", ""]]}
    tricky.write_text(json.dumps(rec) + "\n")
    assert run("import", str(tricky), db=loaded_db).returncode == 0
    r = run("export", "--format", "bibtex", db=loaded_db)
    assert r.returncode == 0
    lib = bibtexparser.parse_string(r.stdout)
    assert not lib.failed_blocks
    assert len(lib.entries) == 701
    keys = [e.key for e in lib.entries]
    assert len(set(keys)) == len(keys)
    by_eprint = {e.fields_dict["eprint"].value: e for e in lib.entries if "eprint" in e.fields_dict}
    t = by_eprint["2401.00042"]
    assert t.entry_type == "misc"
    assert t.fields_dict["author"].value == "Zoë Ångström and J. O'Neil"
    assert "\\%" in t.fields_dict["title"].value and "\\&" in t.fields_dict["title"].value
    assert t.fields_dict["primaryClass"].value == "cs.CL"
    assert by_eprint["0704.0001"].entry_type == "article"
    one = run("export", "--format", "bibtex", "0704.0001", db=loaded_db)
    assert one.stdout.count("@") == 1 and "balazs2007calculation" in one.stdout


def test_demo_loads_bundled_corpus_once(tmp_path):
    env = {"PAPERWIRE_DB": str(tmp_path / "demo.db")}
    first = run("demo", "--no-serve", env=env)
    assert first.returncode == 0, first.stderr
    assert "2498 added" in first.stdout and str(tmp_path / "demo.db") in first.stdout
    again = run("demo", "--no-serve", env=env)
    assert "already loaded" in again.stdout
    stats = json.loads(run("stats", "--json", env=env).stdout)
    assert stats["papers"] == 2498
    assert stats["by_source"] == {"arxiv-snapshot": 2000, "listing": 498}


def test_db_path_resolution(tmp_path, monkeypatch):
    from paperwire.settings import resolve_db_path

    monkeypatch.setenv("PAPERWIRE_DB", str(tmp_path / "env.db"))
    assert resolve_db_path("/x/flag.db") == Path("/x/flag.db")
    assert resolve_db_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("PAPERWIRE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_db_path(None) == tmp_path / "xdg" / "paperwire" / "paperwire.db"


def test_progress_bar_only_on_a_terminal(tmp_path, shared_dir):
    src = str(shared_dir / "data/arxiv/arxiv-metadata-2000.csv")
    quiet = run("import", src, db=tmp_path / "q.db")
    assert quiet.stderr == ""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "paperwire", "--db", str(tmp_path / "t.db"), "import", src],
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    out, _ = proc.communicate(timeout=120)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0 and "2000 added" in out
    assert b"importing" in seen and b"rec" in seen
