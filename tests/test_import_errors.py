"""Bad input: reported with file and line, skipped by default, fatal with --strict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from paperwire.ingest import StrictImportError
from paperwire.sources import import_files
from paperwire.sources.base import UnreadableFile
from paperwire.store import papers as store


def snapshot_line(i: int, **over) -> str:
    rec = {"id": f"2401.{i:05d}", "title": f"Paper number {i}", "abstract": "An abstract. " * 5,
           "authors": "A. Author", "categories": "cs.LG", "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
           "update_date": "2024-01-02", "authors_parsed": [["Author", "A.", ""]]}
    rec.update(over)
    return json.dumps(rec)


@pytest.fixture
def bad_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        snapshot_line(1),
        "{not json",
        snapshot_line(3, title="   "),
        snapshot_line(4, id="not-an-id"),
        snapshot_line(5, versions=[{"version": "v1", "created": "yesterday-ish"}]),
        "[1, 2]",
        snapshot_line(7),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_records_are_reported_with_file_line_and_reason(conn, bad_jsonl):
    report = import_files(conn, [bad_jsonl], progress=False)
    assert (report.added, report.skipped) == (2, 5)
    errors = [str(e) for e in report.errors]
    assert [e.split(":")[1] for e in errors] == ["2", "3", "4", "5", "6"]
    assert all(e.startswith(str(bad_jsonl)) for e in errors)
    assert "invalid JSON" in errors[0]
    assert "missing title" in errors[1]
    assert "not an arXiv id" in errors[2]
    assert "unreadable date" in errors[3]
    assert "not a JSON object" in errors[4]


def test_strict_aborts_and_writes_nothing_even_across_files(conn, tmp_path, shared_dir, bad_jsonl):
    good = shared_dir / "data/arxiv/arxiv-metadata-200.jsonl"
    with pytest.raises(StrictImportError) as exc:
        import_files(conn, [good, bad_jsonl], strict=True, progress=False, batch_size=50)
    assert f"{bad_jsonl}:2:" in str(exc.value)
    assert store.count_papers(conn) == 0


def test_csv_with_broken_rows(conn, tmp_path):
    path = tmp_path / "snap.csv"
    header = "id,submitter,authors,title,comments,journal-ref,doi,report-no,categories,license,abstract,versions,update_date,authors_parsed\n"
    ok = '704.0001,X,"A. B",Good title,,,,,hep-ph,,"Abstract text here","[{\'version\': \'v1\', \'created\': \'Mon, 2 Apr 2007 19:18:42 GMT\'}]",5/13/2015,"[[\'B\', \'A.\', \'\']]"\n'
    short = "704.0002,X,only three\n"
    badlit = '704.0003,X,"A. B",Another,,,,,hep-ph,,"Abs","[{broken",5/13/2015,"[]"\n'
    path.write_text(header + ok + short + badlit)
    report = import_files(conn, [path], progress=False)
    assert report.added == 1 and report.skipped == 2
    assert [e.line for e in report.errors] == [3, 4]
    assert store.get_paper(conn, "0704.0001")["title"] == "Good title"


def test_listing_title_without_abstract_is_reported(conn, tmp_path):
    path = tmp_path / "page.txt"
    abstract = "We study things in depth and report results that matter. " * 4
    path.write_text(
        "Get trending papers in your email inbox!\n\nSubscribe\n\nMar 11\n\n"
        f"First paper title\n\n{abstract}\n\nOrphan title with no abstract\n\nThird paper title\n\n{abstract}\n"
    )
    report = import_files(conn, [path], progress=False)
    assert report.added == 2 and report.skipped == 1
    assert report.errors[0].line == 11 and "without an abstract" in report.errors[0].reason


def test_unknown_and_binary_files_raise_clear_errors(conn, tmp_path):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    with pytest.raises(UnreadableFile, match="binary file"):
        import_files(conn, [binary], progress=False)
    prose = tmp_path / "notes.md"
    prose.write_text("# Notes\n\nsome words\n")
    with pytest.raises(UnreadableFile, match="cannot tell the format"):
        import_files(conn, [prose], progress=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UnreadableFile, match="empty"):
        import_files(conn, [empty], progress=False)
    with pytest.raises(UnreadableFile, match="no such file"):
        import_files(conn, [tmp_path / "missing.jsonl"], progress=False)


def test_unreadable_file_fails_before_anything_is_written(conn, tmp_path, shared_dir):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnreadableFile):
        import_files(conn, [shared_dir / "data/arxiv/arxiv-metadata-200.jsonl", binary], progress=False)
    assert store.count_papers(conn) == 0


def run_cli(*args, db):
    return subprocess.run([sys.executable, "-m", "paperwire", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_errors_are_messages_not_tracebacks(tmp_path, bad_jsonl):
    db = tmp_path / "cli.db"
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    r = run_cli("import", str(binary), db=db)
    assert r.returncode == 1
    assert "Error:" in r.stderr and "binary file" in r.stderr and "Traceback" not in r.stderr

    r = run_cli("import", "--strict", str(bad_jsonl), db=db)
    assert r.returncode == 1 and "nothing was imported" in r.stderr and "Traceback" not in r.stderr
    assert f"{bad_jsonl}:2:" in r.stderr

    r = run_cli("import", str(bad_jsonl), db=db)
    assert r.returncode == 0
    assert "2 added, 0 updated, 0 unchanged, 5 skipped" in r.stdout
    assert f"skipped {bad_jsonl}:3: missing title" in r.stderr
    assert "Traceback" not in r.stderr


def test_newer_version_updates_older_never_overwrites(conn, tmp_path):
    v1 = tmp_path / "v1.jsonl"
    v2 = tmp_path / "v2.jsonl"
    versions1 = [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}]
    versions2 = versions1 + [{"version": "v2", "created": "Mon, 8 Jan 2024 10:00:00 GMT"}]
    v1.write_text(snapshot_line(1, versions=versions1, abstract="Old abstract of the first version.") + "\n")
    v2.write_text(snapshot_line(1, versions=versions2, abstract="New abstract of the second version.") + "\n")
    assert import_files(conn, [v1], progress=False).added == 1
    old_hash = store.get_paper(conn, "2401.00001")["content_hash"]
    r = import_files(conn, [v2], progress=False)
    assert (r.added, r.updated) == (0, 1)
    p = store.get_paper(conn, "2401.00001v2")
    assert p["version"] == 2 and p["abstract"] == "New abstract of the second version."
    assert p["published"] == "2024-01-01T10:00:00Z" and p["updated"] == "2024-01-08T10:00:00Z"
    assert p["content_hash"] != old_hash
    r = import_files(conn, [v1], progress=False)
    assert (r.updated, r.unchanged) == (0, 1)
    assert store.get_paper(conn, "2401.00001")["version"] == 2
    assert store.count_papers(conn) == 1


def test_parallel_parsing_gives_the_same_result(tmp_path, shared_dir, bad_jsonl):
    from paperwire.store.db import connect

    files = [shared_dir / "data/arxiv/arxiv-metadata-2000.csv", bad_jsonl, shared_dir / "seeds"]
    results = []
    for parallel in (False, True):
        c = connect(tmp_path / f"p{parallel}.db")
        report = import_files(c, files, progress=False, parallel=parallel)
        rows = sorted(tuple(r) for r in c.execute("SELECT paper_id, record_hash FROM papers"))
        results.append((report.summary(), [str(e) for e in report.errors], rows))
        c.close()
    assert results[0] == results[1]
    assert results[0][0] == "2500 added, 0 updated, 0 unchanged, 81 duplicates within the input, 5 skipped"
