"""Every importer against the real files in ../shared, plus the HF fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paperwire.sources import detect_format, import_files
from paperwire.store import papers as store

FIXTURES = Path(__file__).parent / "fixtures"


def count(conn) -> int:
    return store.count_papers(conn)


def test_arxiv_jsonl_200(conn, shared_dir):
    report = import_files(conn, [shared_dir / "data/arxiv/arxiv-metadata-200.jsonl"], progress=False)
    assert (report.added, report.skipped) == (200, 0)
    assert count(conn) == 200
    p = store.get_paper(conn, "0704.0001")
    assert p["title"] == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert p["authors"] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert p["categories"] == ["hep-ph"] and p["primary_category"] == "hep-ph"
    assert p["published"] == "2007-04-02T19:18:42Z"
    assert p["version"] == 2
    assert p["doi"] == "10.1103/PhysRevD.76.013009"
    assert p["journal_ref"] == "Phys.Rev.D76:013009,2007"
    assert p["abs_url"] == "https://arxiv.org/abs/0704.0001"
    assert p["pdf_url"] == "https://arxiv.org/pdf/0704.0001"
    assert p["source"] == "arxiv-snapshot" and p["first_seen"]
    assert len(p["content_hash"]) == 64


def test_arxiv_csv_2000_repairs_ids_and_parses_literals(conn, shared_dir):
    report = import_files(conn, [shared_dir / "data/arxiv/arxiv-metadata-2000.csv"], progress=False)
    assert (report.added, report.skipped) == (2000, 0)
    ids = {r[0] for r in conn.execute("SELECT arxiv_id FROM papers")}
    assert "0704.0006" in ids and "704.0006" not in ids
    assert "0704.0010" in ids and "0704.0100" in ids  # "704.001" and "704.01" lost their zeros
    assert all(len(i) == 9 for i in ids)
    p = store.get_paper(conn, "0704.0006")
    assert p["authors"] == ["Y. H. Pong", "C. K. Law"]  # from authors_parsed
    assert p["published"] == "2007-03-31T04:24:59Z"  # first version's date
    assert p["updated"] == "2015-05-13T00:00:00Z"  # update_date M/D/YYYY
    multi = conn.execute("SELECT COUNT(*) FROM papers WHERE version > 1").fetchone()[0]
    assert multi > 100


def test_jsonl_and_csv_agree_on_shared_records(conn, shared_dir):
    import_files(conn, [shared_dir / "data/arxiv/arxiv-metadata-200.jsonl"], progress=False)
    report = import_files(conn, [shared_dir / "data/arxiv/arxiv-metadata-2000.csv"], progress=False)
    # The 200 JSON records are also in the CSV and parse to identical papers.
    assert (report.added, report.updated, report.unchanged) == (1800, 0, 200)


def test_listing_pages_579_entries_498_papers(conn, shared_dir):
    report = import_files(conn, [shared_dir / "seeds"], progress=False)
    assert report.total == 579
    # 81 entries repeat a paper of another page: duplicates within the input, not "unchanged".
    assert (report.added, report.updated, report.unchanged, report.duplicates, report.skipped) == (498, 0, 0, 81, 0)
    titles = [r[0] for r in conn.execute("SELECT title FROM papers")]
    assert not any(t.lower().startswith(("subscribe", "get trending", "new")) for t in titles)
    assert "Can we Constrain Concept Bottleneck Models to Learn Semantically Meaningful Input Features?" in titles
    ids = [r[0] for r in conn.execute("SELECT paper_id FROM papers")]
    assert all(i.startswith("pw-") for i in ids)


def test_listing_ids_are_stable_across_databases(tmp_path, shared_dir):
    from paperwire.store.db import connect

    sets = []
    for name in ("a.db", "b.db"):
        c = connect(tmp_path / name)
        import_files(c, [shared_dir / "seeds"], progress=False)
        sets.append({tuple(r) for r in c.execute("SELECT paper_id, title FROM papers")})
        c.close()
    assert sets[0] == sets[1]


def test_beir_ids_kept_as_given(conn, shared_dir):
    report = import_files(conn, [shared_dir / "bench/scifact"], progress=False)
    assert report.added == 5183 and count(conn) == 5183
    p = store.get_paper(conn, "4983")
    assert p["title"].startswith("Microstructural development of human newborn cerebral white matter")
    assert p["id_kind"] == "external"


def test_hf_daily_papers_fixture_keeps_upvotes_and_submitter(conn):
    report = import_files(conn, [FIXTURES / "hf_daily_papers.json"], progress=False)
    assert report.added == 3
    p = store.get_paper(conn, "2403.06977")
    assert p["upvotes"] == 31
    assert p["submitted_by"] == "akhaliq"
    assert p["authors"] == ["Mingrui Wu", "Xinyue Cai"]
    assert p["published"] == "2024-03-11T12:00:02Z"
    assert p["listed_at"] == "2024-03-12T02:40:10Z" and p["feed_date"] == "2024-03-12"
    assert p["project_url"] == "https://example.org/videomamba"
    assert store.get_paper(conn, "2403.07691")["code_url"] == "https://github.com/example/cbm-features"
    assert store.get_paper(conn, "2403.05530")["num_comments"] == 5


def test_hf_entry_upgrades_listing_paper_to_arxiv_id(conn, shared_dir):
    import_files(conn, [shared_dir / "seeds"], progress=False)
    before = store.get_paper(conn, "pw-" + __import__("hashlib").sha1(
        b"can we constrain concept bottleneck models to learn semantically meaningful input features").hexdigest()[:12])
    assert before is not None and before["arxiv_id"] is None
    report = import_files(conn, [FIXTURES / "hf_daily_papers.json"], progress=False)
    assert (report.added, report.updated) == (2, 1)
    assert count(conn) == 500
    after = store.get_paper(conn, "2403.07691")
    assert after["id"] == before["id"] and after["upvotes"] == 12
    assert store.get_paper(conn, before["paper_id"])["paper_id"] == "2403.07691"  # old id still resolves


def test_cs_abstracts_csv(conn, shared_dir):
    report = import_files(conn, [shared_dir / "data/arxiv/arxiv-cs-abstracts-1000.csv"], progress=False)
    assert report.total == 1000 and report.skipped == 0
    assert report.added + report.duplicates == 1000 and report.unchanged == 0
    assert count(conn) == report.added
    p = store.get_paper(conn, conn.execute("SELECT paper_id FROM papers LIMIT 1").fetchone()[0])
    assert p["categories"] and p["abstract"]


def test_reimporting_everything_changes_nothing(conn, shared_dir):
    files = [shared_dir / "seeds", shared_dir / "data/arxiv/arxiv-metadata-200.jsonl",
             shared_dir / "data/arxiv/arxiv-metadata-2000.csv", shared_dir / "data/arxiv/arxiv-cs-abstracts-1000.csv",
             shared_dir / "bench/scifact", FIXTURES / "hf_daily_papers.json"]
    first = import_files(conn, files, progress=False)
    n = count(conn)
    rev = store.current_rev(conn)
    again = import_files(conn, files, progress=False)
    assert (again.added, again.updated, again.skipped) == (0, 0, 0)
    assert again.unchanged == first.total
    assert count(conn) == n
    assert conn.execute("SELECT MAX(rev) FROM papers").fetchone()[0] <= rev


@pytest.mark.parametrize("name,expected", [
    ("data/arxiv/arxiv-metadata-200.jsonl", "arxiv-jsonl"),
    ("data/arxiv/arxiv-metadata-2000.csv", "arxiv-csv"),
    ("data/arxiv/arxiv-cs-abstracts-1000.csv", "cs-abstracts"),
    ("seeds/003_cb80cc7fa44364f2.txt", "listing"),
    ("bench/scifact/corpus.jsonl", "beir"),
])
def test_format_detected_from_content_not_extension(tmp_path, shared_dir, name, expected):
    renamed = tmp_path / "mystery.dat"
    shutil.copy(shared_dir / name, renamed)
    assert detect_format(renamed) == expected


def test_gzipped_input(tmp_path, conn, shared_dir):
    import gzip

    gz = tmp_path / "snap.jsonl.gz"
    gz.write_bytes(gzip.compress((shared_dir / "data/arxiv/arxiv-metadata-200.jsonl").read_bytes()))
    assert import_files(conn, [gz], progress=False).added == 200
