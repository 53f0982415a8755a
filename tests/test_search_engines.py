"""The two lexical engines: FTS5 (index of record) and the tantivy fast path."""

from __future__ import annotations

import shutil

import pytest

from paperwire.index import fastlex
from paperwire.index.build import update_index, update_lexical
from paperwire.index.lexical import lexical_search
from paperwire.index.query import parse_query
from paperwire.index.search import search
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from tests.search_support import CORPUS, load_corpus, make_records

tantivy = pytest.importorskip("tantivy")


@pytest.fixture
def econn(conn):
    fastlex.close_all()
    load_corpus(conn)
    update_index(conn, semantic=False)
    yield conn
    fastlex.close_all()


def top(conn, q, engine, k=3):
    return [r for r, _ in lexical_search(conn, parse_query(q), limit=k, engine=engine)]


def test_engines_agree_on_simple_queries(econn):
    assert fastlex.fast_ready(econn) is not None
    for q in ("attention", "diffusion images", "galaxy dark matter", "language models scaling", "protein folding"):
        assert top(econn, q, "tantivy", 1) == top(econn, q, "fts5", 1), q
    # date filters on the fast path
    by_year = [r for r, _ in lexical_search(econn, parse_query("attention year:2024"), limit=10, engine="tantivy")]
    assert len(by_year) == 2


def test_fast_path_follows_updates_and_deletes_old_text(econn):
    rows = [dict(r) for r in CORPUS]
    rows[6] = dict(rows[6], abstract="Quasar spectroscopy reveals intergalactic helium reionization.")
    import_records(econn, make_records(rows))
    update_index(econn, semantic=False)
    assert fastlex.fast_ready(econn) is not None
    rid = econn.execute("SELECT id FROM papers WHERE paper_id='2104.00007'").fetchone()[0]
    assert top(econn, "quasar helium", "tantivy") == [rid]
    assert top(econn, "halos spiral", "tantivy") == []


def test_stale_fast_index_is_bypassed(econn):
    if getattr(econn, "dialect", "sqlite") == "postgresql":
        pytest.skip("SQLite only: on PostgreSQL tantivy is the index and catches up, nothing to bypass to")
    import_records(econn, [PaperRecord(title="Quantum error correction codes", abstract="Surface codes.", source="t")])
    update_lexical(econn)  # FTS5 caught up, tantivy not
    assert fastlex.fast_ready(econn) is None
    assert [h.title for h in search(econn, "quantum error", mode="lexical").hits] == ["Quantum error correction codes"]
    update_index(econn, semantic=False)
    assert fastlex.fast_ready(econn) is not None
    assert len(top(econn, "quantum error", "tantivy")) == 1


def test_deleted_fast_index_is_rebuilt(econn, db_path):
    path = fastlex.index_dir(econn)
    fastlex.close_all()
    shutil.rmtree(path)
    rep = update_index(econn, semantic=False)
    assert rep["fast"]["indexed"] == 8
    assert top(econn, "attention", "tantivy", 5) == top(econn, "attention", "tantivy", 5)
    assert len(top(econn, "attention", "tantivy", 5)) == 3
