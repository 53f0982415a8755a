"""The PostgreSQL forms of hot store paths give SQLite's answers: reads by row id with one
array parameter (store/pgpapers.py) and the inlinable two-argument max/min (m0005)."""

from __future__ import annotations

import json

import psycopg
import pytest

from paperwire.sources import import_files
from paperwire.store import papers
from paperwire.store.db import connect


def snapshot(path, n: int):
    lines = [json.dumps({
        "id": f"2403.{i:05d}", "title": f"Paper {i} on graphs", "abstract": f"Abstract {i}.",
        "authors": "Ada Lovelace, Alan Turing", "categories": "cs.LG cs.DS",
        "versions": [{"version": "v1", "created": f"Mon, 0{1 + i % 7} Mar 2024 10:00:00 GMT"}],
    }) for i in range(1, n + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_papers_by_rowid_same_on_both_engines(store_target, tmp_path):
    conn = connect(store_target)
    import_files(conn, [snapshot(tmp_path / "s.jsonl", 700)], progress=False)
    # More ids than one SQLite chunk (500), repeats, and ids of no paper.
    wanted = list(range(700, 0, -1)) + [5, 5, 9999, -1]
    got = papers.get_papers_by_rowid(conn, wanted)
    assert sorted(got) == list(range(1, 701))
    assert got[5]["paper_id"] == "2403.00005" and got[5]["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert papers.get_papers_by_rowid(conn, []) == {}
    assert set(papers.get_papers_by_rowid(conn, (i for i in (3, 4)))) == {3, 4}  # any iterable
    conn.close()


@pytest.mark.parametrize("t", ["double precision", "bigint"])
def test_two_argument_max_min_keep_sqlite_meaning_and_are_inlined(pg_url, t):
    connect(pg_url).close()  # migrations
    with psycopg.connect(pg_url) as c:
        row = c.execute(f"SELECT max(1::{t}, 2::{t}), min(1::{t}, 2::{t}), max(NULL::{t}, 2::{t}), "
                        f"min(3::{t}, NULL::{t}), max(-5::{t}, 0::{t})").fetchone()
        assert [None if v is None else float(v) for v in row] == [2.0, 1.0, None, None, 0.0]
        # An expensive argument (the paper's age, as on a trending page) still inlines: no
        # call of the SQL function per row, the built-in it wraps instead.
        c.execute("CREATE TEMP TABLE t (d text)")
        plan = "\n".join(r[0] for r in c.execute(
            "EXPLAIN VERBOSE SELECT max((julianday('2024-01-01') - julianday(d)) * 24.0, 0.0) FROM t"))
        assert "float8larger" in plan and "max(" not in plan, plan
