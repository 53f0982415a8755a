"""Bulk loads into an empty store: secondary indexes dropped for the load and rebuilt
after it, with exactly the papers a normal import makes (crash tests: test_import_crash.py)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from paperwire.ingest import StrictImportError, import_records
from paperwire.model import PaperRecord, content_hash, record_hash
from paperwire.sources import import_files
from paperwire.store.db import connect
from paperwire.store.papers import bulk_load_pending, count_papers

NOW = "2026-11-22T12:00:00Z"


def rec(i: int, *, version: int = 1, title: str | None = None, abstract: str | None = None) -> PaperRecord:
    return PaperRecord(
        title=title or f"Paper number {i}", abstract=abstract or f"Abstract of paper {i}.",
        source="arxiv-snapshot", arxiv_id=f"2401.{i:05d}", version=version,
        authors=[f"Author {i}", "Zoë Common"], categories=["cs.LG", "stat.ML"],
        published="2024-01-02T00:00:00Z",
    )


def listing(title: str) -> PaperRecord:
    return PaperRecord(title=title, abstract="An abstract as a listing page shows it.", source="listing")


def external(doc: str, text: str) -> PaperRecord:
    return PaperRecord(title=f"Document {doc}", abstract=text, source="beir", external_id=doc)


def mixed(order: str) -> list[PaperRecord]:
    """Records that exercise every merge rule, across batches of 4."""
    ids = [rec(i) for i in range(1, 9)] + [
        rec(3, version=2, abstract="A revised abstract."),  # newer version updates
        rec(4, version=2, abstract="Version two."),
        rec(4, version=1),  # older version never overwrites
        rec(2),  # the same record again: unchanged
        external("d1", "text one"), external("d1", "text one"), external("d2", "text two"),
    ]
    titles = [
        listing("Paper number 6"),  # an id-less copy of a paper with an id
        listing("Only on a listing page"),
        listing("only on a LISTING page!"),  # the same title, normalised
    ]
    upgrade = [rec(20, title="Only on a listing page")]  # gets the id-less paper an id
    return ids + titles + upgrade if order == "ids-first" else titles + ids + upgrade


def dump(conn: sqlite3.Connection) -> dict:
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in ("papers", "paper_authors", "paper_categories", "paper_aliases")}


def indexes(conn: sqlite3.Connection) -> list[tuple]:
    return sorted(tuple(r) for r in conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type='index'"))


def probe(items, db, seen: list):
    """Pass items through, noting before each one what another connection sees:
    (bulk load pending, names of the indexes on papers)."""
    other = sqlite3.connect(db)
    try:
        for item in items:
            names = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='papers'")}
            pending = other.execute("SELECT 1 FROM meta WHERE key='bulk_load_indexes'").fetchone() is not None
            seen.append((pending, names))
            yield item
    finally:
        other.close()


@pytest.mark.parametrize("order", ["ids-first", "listing-first"])
def test_bulk_load_gives_the_same_papers_as_a_normal_import(tmp_path, order):
    results = []
    for bulk in (False, True):
        db = tmp_path / f"{bulk}.db"
        conn = connect(db)
        before = indexes(conn)
        seen: list = []
        report = import_records(conn, probe(mixed(order), db, seen), batch_size=4, bulk=bulk, now=NOW)
        results.append((report.summary(), dump(conn)))
        assert indexes(conn) == before and not bulk_load_pending(conn)
        # The bulk path was really taken: indexes gone mid-load (the title index too)
        # while only papers with ids had come; the first id-less record ends it.
        bulk_seen = [s for s in seen if s[0]]
        assert bool(bulk_seen) == bulk
        if bulk and order == "ids-first":
            assert len(bulk_seen) >= 8 and all("papers_title_norm" not in names for _, names in bulk_seen)
        if bulk and order == "listing-first":
            assert len(bulk_seen) <= 4  # ended at the first batch
        again = import_records(conn, mixed(order), batch_size=4, bulk=True, now=NOW)
        assert again.summary() == f"0 added, 0 updated, {len(mixed(order))} unchanged, 0 skipped"
        conn.close()
    assert results[0] == results[1]
    summary, papers = results[1]
    # ids-first: "Paper number 6" from a listing finds the paper with that id; listing-first:
    # the id upgrades the id-less paper. Either way 11 papers, one per id or title.
    # Every repeat merged into a paper this same import wrote: duplicates, not updates.
    assert summary == "11 added, 0 updated, 0 unchanged, 8 duplicates within the input, 0 skipped"
    by_id = {row[1]: row for row in papers["papers"]}
    assert sorted(by_id) == [f"2401.{i:05d}" for i in (*range(1, 9), 20)] + ["d1", "d2"]
    assert by_id["2401.00004"][4:6] == (2, "Paper number 4")  # (version, title): v2 stayed
    assert len(papers["paper_aliases"]) == {"ids-first": 1, "listing-first": 2}[order]


def test_another_writer_ends_the_bulk_load(tmp_path):
    db = tmp_path / "two.db"
    conn, other = connect(db), connect(db)

    def items():
        yield from (rec(i) for i in range(1, 5))
        # Between two batches someone else imports an id-less paper ...
        import_records(other, [listing("A paper first seen on a listing")])
        # ... which a record with an id must then find by its title.
        yield rec(7, title="A paper first seen on a listing")
        yield rec(8)

    report = import_records(conn, items(), batch_size=2, bulk=True)
    assert (report.added, report.updated) == (5, 1)
    rows = conn.execute("SELECT paper_id FROM papers WHERE title_norm='a paper first seen on a listing'").fetchall()
    assert [r[0] for r in rows] == ["2401.00007"]
    assert conn.execute("SELECT COUNT(*) FROM paper_aliases").fetchone()[0] == 1
    assert not bulk_load_pending(conn)
    assert indexes(conn) == indexes(connect(tmp_path / "fresh.db"))


def test_a_store_with_papers_is_never_bulk_loaded(tmp_path):
    db = tmp_path / "full.db"
    conn = connect(db)
    import_records(conn, [rec(1)])
    before = indexes(conn)
    seen: list = []
    report = import_records(conn, probe([rec(i) for i in range(2, 12)], db, seen), batch_size=2, bulk=True)
    assert report.added == 10
    assert seen and all(not pending and "papers_title_norm" in names for pending, names in seen)
    assert indexes(conn) == before


def test_an_error_mid_bulk_load_keeps_the_papers_and_rebuilds_the_indexes(tmp_path):
    conn = connect(tmp_path / "err.db")
    before = indexes(conn)

    def items():
        yield from (rec(i) for i in range(1, 6))
        raise RuntimeError("the parser process died")

    with pytest.raises(RuntimeError, match="parser process died"):
        import_records(conn, items(), batch_size=2, bulk=True)
    assert count_papers(conn) == 4  # two committed batches; the fifth record was in the lost one
    assert indexes(conn) == before and not bulk_load_pending(conn)


def snapshot_file(path, n: int, bad_at: int | None = None):
    lines = []
    for i in range(1, n + 1):
        if i == bad_at:
            lines.append("{not json")
            continue
        lines.append(json.dumps({
            "id": f"2401.{i:05d}", "title": f"Paper number {i}", "abstract": "An abstract. " * 5,
            "authors": "A. Author, B. Author", "categories": "cs.LG stat.ML",
            "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
            "update_date": "2024-01-02", "authors_parsed": [["Author", "A.", ""], ["Author", "B.", ""]],
        }))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_strict_bulk_load_is_all_or_nothing(tmp_path):
    bad = snapshot_file(tmp_path / "bad.jsonl", 30, bad_at=25)
    conn = connect(tmp_path / "strict.db")
    before = indexes(conn)
    with pytest.raises(StrictImportError, match=":25:"):
        import_files(conn, [bad], strict=True, bulk=True, progress=False, batch_size=4)
    assert count_papers(conn) == 0 and indexes(conn) == before and not bulk_load_pending(conn)

    good = snapshot_file(tmp_path / "good.jsonl", 30)
    report = import_files(conn, [good], strict=True, bulk=True, progress=False, batch_size=4)
    assert report.added == 30 and indexes(conn) == before and not bulk_load_pending(conn)
    normal = connect(tmp_path / "normal.db")
    import_files(normal, [good], strict=True, bulk=False, progress=False, batch_size=4)
    columns = "paper_id, version, title, authors, categories, content_hash, record_hash, rev"
    query = f"SELECT {columns} FROM papers ORDER BY id"
    assert conn.execute(query).fetchall() == normal.execute(query).fetchall()


def test_bad_records_are_still_reported_in_a_bulk_load(tmp_path):
    path = snapshot_file(tmp_path / "some-bad.jsonl", 12, bad_at=5)
    conn = connect(tmp_path / "b.db")
    report = import_files(conn, [path, path], bulk=True, progress=False, batch_size=4)
    assert report.summary() == "11 added, 0 updated, 0 unchanged, 11 duplicates within the input, 2 skipped"
    assert [str(e).split(": ")[0] for e in report.errors] == [f"{path}:5"] * 2
    assert all("invalid JSON" in str(e) for e in report.errors)


def test_hashes_stay_what_stored_papers_have():
    # Stores written by earlier versions hold these hashes; a change would make every
    # paper look updated on the next import.
    values = {
        "title": "A Title", "abstract": 'Some abstract with unicode: é ü — and "quotes".', "version": 2,
        "authors": ["Ana Ñ", "B. Smith"], "categories": ["cs.LG", "stat.ML"], "published": "2024-01-01T10:00:00Z",
        "updated": None, "doi": None, "journal_ref": None, "comments": "10 pages", "license": None,
        "listed_at": None, "code_url": None, "project_url": None, "upvotes": 0, "submitted_by": None,
        "num_comments": 0,
    }
    assert record_hash(values) == "36aa441087264f6ced391288608f86df25fe9967"
    assert content_hash(values["title"], values["abstract"]) == (
        "f1aa7321ebe2d473cef7e04a6646501a5276fa70c08df8ac2a0229baee6bc6ab")
