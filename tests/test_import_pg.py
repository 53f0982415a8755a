"""Bulk loads on PostgreSQL (store/pgpapers.py): secondary indexes and the child tables'
foreign keys dropped for the load of an empty store and made again after it, with exactly
the papers a normal import makes; SIGKILL during the load or the rebuild, then rerun.

The SQLite side of the same rules: test_import_bulk.py and test_import_crash.py.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from paperwire.ingest import StrictImportError, import_records
from paperwire.model import PaperRecord
from paperwire.sources import import_files
from paperwire.store.db import connect
from paperwire.store.papers import bulk_load_pending, count_papers

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-22T12:00:00Z"
N = 12000  # ~19 MB of synthetic snapshot: over the CLI's bulk-load and parallel-parse sizes
TABLES = ("papers", "paper_authors", "paper_categories")


def rec(i: int, *, version: int = 1, title: str | None = None, abstract: str | None = None) -> PaperRecord:
    return PaperRecord(
        title=title or f"Paper number {i}", abstract=abstract or f"Abstract of paper {i}.",
        source="arxiv-snapshot", arxiv_id=f"2401.{i:05d}", version=version,
        authors=[f"Author {i}", "Zoë Common"], categories=["cs.LG", "stat.ML"],
        published="2024-01-02T00:00:00Z",
    )


def mixed() -> list[PaperRecord]:
    """Records of every merge rule across batches of 4 (ids first, so the load lasts)."""
    return [rec(i) for i in range(1, 13)] + [
        rec(3, version=2, abstract="A revised abstract."), rec(4, version=2, abstract="Version two."),
        rec(4, version=1), rec(2),
        PaperRecord(title="Document d1", abstract="text one", source="beir", external_id="d1"),
        PaperRecord(title="Only on a listing page", abstract="As a listing shows it.", source="listing"),
        rec(20, title="Only on a listing page"),  # gives the id-less paper an id (alias)
    ]


def schema(url: str) -> tuple[list, list]:
    """(indexes, constraints) of the paper tables, as the catalog has them."""
    with psycopg.connect(url) as c:
        idx = c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                        "AND tablename = ANY(%s) ORDER BY 1", (list(TABLES),)).fetchall()
        cons = c.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                         "WHERE conrelid::regclass::text = ANY(%s) ORDER BY 1, 2", (list(TABLES),)).fetchall()
    return idx, cons


def dump(url: str) -> dict:
    with psycopg.connect(url) as c:
        cols = "paper_id, id_kind, arxiv_id, version, title, authors, categories, content_hash, record_hash"
        return {
            "papers": c.execute(f"SELECT {cols} FROM papers ORDER BY paper_id").fetchall(),
            "authors": c.execute("SELECT p.paper_id, a.position, a.name, a.name_norm FROM paper_authors a "
                                 "JOIN papers p ON p.id = a.paper ORDER BY 1, 2").fetchall(),
            "categories": c.execute("SELECT p.paper_id, k.position, k.category FROM paper_categories k "
                                    "JOIN papers p ON p.id = k.paper ORDER BY 1, 2").fetchall(),
            "aliases": c.execute("SELECT a.alias, p.paper_id FROM paper_aliases a JOIN papers p ON p.id = a.paper "
                                 "ORDER BY 1").fetchall(),
        }


def probe(items, url: str, seen: list):
    """Pass items through, noting before each what another connection sees: (bulk load
    pending, index names on papers, foreign keys on paper_authors)."""
    with psycopg.connect(url, autocommit=True) as other:
        for item in items:
            names = {r[0] for r in other.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'papers'")}
            fks = other.execute("SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' "
                                "AND conrelid = 'paper_authors'::regclass").fetchone()[0]
            pending = other.execute("SELECT 1 FROM meta WHERE key = 'bulk_load_indexes'").fetchone() is not None
            seen.append((pending, names, fks))
            yield item


def test_bulk_load_on_postgresql_gives_the_same_papers_as_a_normal_import(pg_cluster, pg_url):
    normal_url = pg_cluster.create_database()
    results = []
    for url, bulk in ((normal_url, False), (pg_url, True)):
        conn = connect(url)
        before = schema(url)
        seen: list = []
        report = import_records(conn, probe(mixed(), url, seen), batch_size=4, bulk=bulk, now=NOW)
        assert schema(url) == before and not bulk_load_pending(conn)
        during = [s for s in seen[1:] if s[0]]  # the first record is read before the load starts
        if bulk:
            # The load really ran without the title index and the child tables' foreign keys...
            assert len(during) >= 8 and all("papers_title_norm" not in names and fks == 0
                                            for _, names, fks in during)
        else:
            assert not during
        again = import_records(conn, mixed(), batch_size=4, bulk=True, now=NOW)
        assert (again.added, again.updated, again.unchanged) == (0, 0, len(mixed()))
        results.append((report.summary(), dump(url)))
        conn.close()
    assert results[0] == results[1]
    # 12 ids, d1 and the listing paper; the repeats and the id upgrade merge into them.
    assert results[1][0] == "14 added, 0 updated, 0 unchanged, 5 duplicates within the input, 0 skipped"


def test_strict_bulk_load_on_postgresql_is_all_or_nothing(pg_url, tmp_path):
    lines = [f'{{"id": "2401.{i:05d}", "title": "Paper {i}", "abstract": "Text.", "authors": "A. B", '
             f'"categories": "cs.LG", "versions": [{{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}}]}}'
             for i in range(1, 31)]
    lines[24] = "{not json"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    conn = connect(pg_url)
    before = schema(pg_url)
    with pytest.raises(StrictImportError, match=r"bad\.jsonl:25:"):
        import_files(conn, [bad], strict=True, bulk=True, progress=False, batch_size=4)
    # The drops were part of the one transaction: back with its rollback.
    assert count_papers(conn) == 0 and schema(pg_url) == before and not bulk_load_pending(conn)
    conn.close()


def test_a_paper_deleted_during_the_load_leaves_no_orphans(pg_url):
    """Without its foreign key a child row would outlive a deleted paper; the rebuild removes
    such rows (what the cascade would have done) so that the key can come back."""
    conn = connect(pg_url)
    before = schema(pg_url)

    def items():
        yield from (rec(i) for i in range(1, 5))
        with psycopg.connect(pg_url, autocommit=True) as other:  # between two batches
            other.execute("DELETE FROM papers WHERE arxiv_id = '2401.00001'")
        yield from (rec(i) for i in range(5, 9))

    report = import_records(conn, items(), batch_size=2, bulk=True)
    assert report.added == 8 and not bulk_load_pending(conn) and schema(pg_url) == before
    orphans = conn.execute("SELECT COUNT(*) FROM paper_authors WHERE paper NOT IN (SELECT id FROM papers)").fetchone()
    assert orphans[0] == 0 and count_papers(conn) == 7
    conn.close()


# ---------------------------------------------------------------- SIGKILL through the CLI

def load_synth():
    spec = importlib.util.spec_from_file_location("synth_snapshot", ROOT / "bench" / "synth_snapshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    if not (ROOT.parent / "shared" / "data" / "arxiv").is_dir():
        pytest.skip("shared data folder not found")
    return load_synth().write_snapshot(N, tmp_path_factory.mktemp("synth") / "snap.jsonl")


def cli(url: str, snap: Path, env: dict | None = None, **kw):
    cmd = [sys.executable, "-m", "paperwire", "--db", url, "import", "--batch-size", "300", str(snap)]
    full = dict(os.environ, **(env or {}))
    full.pop("PAPERWIRE_DB", None)
    return cmd, full


def state(url: str):
    with psycopg.connect(url) as c:
        papers = c.execute("SELECT paper_id, record_hash, content_hash FROM papers ORDER BY paper_id").fetchall()
        counts = c.execute(
            "SELECT (SELECT COUNT(*) FROM paper_authors), (SELECT COUNT(*) FROM paper_categories), "
            "(SELECT COUNT(*) - COUNT(DISTINCT arxiv_id) FROM papers), "
            "(SELECT COUNT(*) FROM paper_authors WHERE paper NOT IN (SELECT id FROM papers))").fetchone()
    return papers, counts


def pending(url: str) -> bool:
    with psycopg.connect(url) as c:
        return c.execute("SELECT 1 FROM meta WHERE key = 'bulk_load_indexes'").fetchone() is not None


def papers_in(url: str) -> int:
    try:
        with psycopg.connect(url) as c:
            return c.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    except psycopg.Error:
        return 0  # schema not there yet


@pytest.fixture(scope="module")
def reference(pg_cluster, snapshot):
    """An uninterrupted bulk import via the CLI: what every interrupted one must end with."""
    url = pg_cluster.create_database()
    cmd, env = cli(url, snapshot)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{N} added, 0 updated, 0 unchanged, 0 skipped"
    return state(url), schema(url)


def test_sigkill_mid_bulk_load_then_rerun_on_postgresql(pg_url, snapshot, reference):
    expected, expected_schema = reference
    cmd, env = cli(pg_url, snapshot)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while papers_in(pg_url) < 1500:
            assert proc.poll() is None, "import finished before it could be killed; raise N"
            assert time.monotonic() < deadline, "import made no progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = papers_in(pg_url)
    assert 0 < partial < N and partial % 300 == 0  # whole batches only
    assert pending(pg_url) and schema(pg_url) != expected_schema  # killed inside the bulk load

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(f"{N - partial} added, 0 updated, 0 unchanged, 0 skipped (resumed")
    assert state(pg_url) == expected and schema(pg_url) == expected_schema and not pending(pg_url)


@pytest.mark.parametrize("crash_at", [1, 12])
def test_sigkill_during_the_rebuild_then_rerun_on_postgresql(pg_url, snapshot, reference, crash_at):
    """Killed once the nth dropped object (index or foreign key) is made but not committed;
    the rerun makes the rest before importing (killed there too, once), then all is back."""
    expected, expected_schema = reference
    cmd, env = cli(pg_url, snapshot, {"PAPERWIRE_IMPORT_CRASH_AT": f"index:{crash_at}"})
    killed = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert papers_in(pg_url) == N and pending(pg_url)
    idx, cons = schema(pg_url)
    missing = (set(expected_schema[0]) - set(idx)) | (set(expected_schema[1]) - set(cons))
    assert len(missing) == 14 - (crash_at - 1)  # 12 indexes and 2 foreign keys, made in order

    cmd, env = cli(pg_url, snapshot, {"PAPERWIRE_IMPORT_CRASH_AT": "index:1"})
    killed = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL and pending(pg_url)

    cmd, env = cli(pg_url, snapshot)
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert final.stdout.strip() == (f"0 added, 0 updated, 0 unchanged, 0 skipped (resumed an interrupted import: "
                                    f"lines 1-{N:,} of {snapshot} already imported)")
    assert state(pg_url) == expected and schema(pg_url) == expected_schema and not pending(pg_url)
