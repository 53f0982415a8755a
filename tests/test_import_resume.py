"""A rerun of a killed import resumes where the killed one stopped (issue 10: after a
kill at 80k of 100k records, reruns re-read every unchanged record before their first
commit, so reruns killed again made no progress at all)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from paperwire.sources import import_files, resume
from paperwire.store import papers as store
from paperwire.store.meta import get_meta
from tests.test_import_crash import cli, count, load_synth, state

ROOT = Path(__file__).resolve().parent.parent
N = 12000


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    if not (ROOT.parent / "shared" / "data" / "arxiv").is_dir():
        pytest.skip("shared data folder not found")
    return load_synth().write_snapshot(N, tmp_path_factory.mktemp("synth") / "snap.jsonl")


def rev(db: Path) -> int:
    c = sqlite3.connect(db)
    try:
        return int(c.execute("SELECT value FROM meta WHERE key='rev'").fetchone()[0])
    finally:
        c.close()


def mark(db: Path) -> dict | None:
    c = sqlite3.connect(db)
    try:
        row = c.execute("SELECT value FROM meta WHERE key=?", (resume.META_KEY,)).fetchone()
        return json.loads(row[0]) if row else None
    finally:
        c.close()


def run_until(proc, db: Path, done, what: str, timeout: float = 180) -> None:
    """SIGKILL ``proc`` once ``done()`` holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if done():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"import finished before {what}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


def test_rerun_after_sigkill_resumes_instead_of_rereading(tmp_path, snapshot):
    ref = tmp_path / "ref.db"
    subprocess.run(cli(ref, str(snapshot)), check=True, capture_output=True, timeout=300)
    expected = state(ref)

    db = tmp_path / "killed.db"
    proc = subprocess.Popen(cli(db, str(snapshot)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_until(proc, db, lambda: count(db) >= (2 * N) // 3, "two thirds were in")
    seen, rev0 = count(db), rev(db)
    m = mark(db)
    assert m is not None and m["file"] == 0 and 0 < m["line"] <= N  # how far the killed run got

    # The rerun's very first batch must hold new papers: it reads none of the lines before
    # the mark. Kill it at its first commit, twice in a row: each makes progress.
    for _ in range(2):
        proc = subprocess.Popen(cli(db, str(snapshot)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_until(proc, db, lambda: rev(db) > rev0, "commit by the rerun")
        c = sqlite3.connect(db)
        new_batches = c.execute("SELECT COUNT(DISTINCT rev) FROM papers WHERE rev > ?", (rev0,)).fetchone()[0]
        c.close()
        assert count(db) > seen
        assert new_batches == rev(db) - rev0  # every batch the rerun committed added papers
        seen, rev0 = count(db), rev(db)
    assert seen < N

    final = subprocess.run(cli(db, str(snapshot)), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert int(final.stdout.split()[0]) == N - seen
    assert "resumed an interrupted import: lines 1-" in final.stdout
    assert state(db) == expected and expected[3] == 0  # same papers, no duplicates
    assert mark(db) is None  # finished: the next import of these files reads them all
    again = subprocess.run(cli(db, str(snapshot)), capture_output=True, text=True, timeout=300)
    assert again.stdout.strip() == f"0 added, 0 updated, {N} unchanged, 0 skipped"


def jsonl(path: Path, ids) -> Path:
    path.write_text("".join(json.dumps({"id": f"2401.{i:05d}", "title": f"Paper {i}", "abstract": "Text.",
                                        "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}]})
                            + "\n" for i in ids))
    return path


def crash_after(monkeypatch, batches: int) -> None:
    """Make the import die in the batch after ``batches`` committed ones (as a kill would)."""
    real, calls = resume.save, []

    def save(conn, key, file, line):
        calls.append(line)
        if len(calls) > batches:
            raise KeyboardInterrupt  # inside the batch's transaction: it rolls back
        real(conn, key, file, line)

    monkeypatch.setattr(resume, "save", save)


def test_resume_across_files_and_only_for_the_same_input(conn, tmp_path, monkeypatch):
    a = jsonl(tmp_path / "a.jsonl", range(1, 21))
    b = jsonl(tmp_path / "b.jsonl", range(21, 51))
    crash_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        import_files(conn, [a, b], progress=False, batch_size=10, parallel=False)
    monkeypatch.undo()
    assert store.count_papers(conn) == 30 and json.loads(get_meta(conn, resume.META_KEY))["line"] == 10

    report = import_files(conn, [a, b], progress=False, batch_size=10)
    assert (report.added, report.unchanged) == (20, 0)  # nothing of a.jsonl, lines 11-30 of b
    assert report.resumed == f"resumed an interrupted import: {a} already imported; lines 1-10 of {b} already imported"
    assert store.count_papers(conn) == 50 and get_meta(conn, resume.META_KEY) is None

    # An input that changed since starts over: every record is read again.
    crash_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        import_files(conn, [b], progress=False, batch_size=10, parallel=False)
    monkeypatch.undo()
    jsonl(b, range(21, 52))
    report = import_files(conn, [b], progress=False, batch_size=10, parallel=True)
    assert (report.added, report.unchanged, report.resumed) == (1, 30, None)


def test_csv_resumes_after_the_last_committed_record(tmp_path, monkeypatch):
    from paperwire.store.db import connect

    header = "id,title,abstract,versions,update_date\n"
    rows = "".join(f'704.{i:04d},Paper {i},"An abstract\nover two lines, {i}.",[],5/13/2015\n' for i in range(1, 36))
    path = tmp_path / "snap.csv"
    path.write_text(header + rows)
    ref = connect(tmp_path / "ref.db")
    import_files(ref, [path], progress=False)
    conn = connect(tmp_path / "resumed.db")
    crash_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        import_files(conn, [path], progress=False, batch_size=10)
    monkeypatch.undo()
    # Two batches of 10 records, two lines each, after the header: up to line 41.
    assert store.count_papers(conn) == 20 and json.loads(get_meta(conn, resume.META_KEY))["line"] == 41
    report = import_files(conn, [path], progress=False, batch_size=10)
    assert (report.added, report.unchanged, report.skipped) == (15, 0, 0), report.errors
    assert report.resumed == f"resumed an interrupted import: lines 1-41 of {path} already imported"
    query = "SELECT paper_id, record_hash FROM papers ORDER BY paper_id"
    assert conn.execute(query).fetchall() == ref.execute(query).fetchall()
    ref.close()
    conn.close()
