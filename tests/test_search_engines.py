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


def test_count_after_a_search_is_that_searchs_count_taken_once(econn, monkeypatch):
    """The result total reuses the count tantivy made while collecting the top k of the
    same query: it equals a fresh count, is used once, and never answers another query."""
    fast = fastlex.fast_ready(econn)
    fresh = {q: fast.count(q.split()) for q in ("attention", "models", "galaxy")}
    assert fresh["attention"] >= 2 and fresh["models"] >= 2
    passes = []

    class CountingIndex:  # the tantivy index, counting the searches made on it
        def __init__(self, index):
            self._index = index

        def searcher(self):
            passes.append(1)
            return self._index.searcher()

        def __getattr__(self, name):
            return getattr(self._index, name)

    monkeypatch.setattr(fast, "index", CountingIndex(fast.index))
    hits = fast.search(["models"], 1)
    assert len(hits) == 1 and len(passes) == 1
    assert fast.count(["models"]) == fresh["models"] and len(passes) == 1  # no second pass
    assert fast.count(["models"]) == fresh["models"] and len(passes) == 2  # taken once: counted again
    fast.search(["models"], 1, date_from="2024-01-01")
    assert fast.count(["models"]) == fresh["models"] and len(passes) == 4  # other filters: not reused
    fast.search(["attention"], 1)
    assert fast.count(["galaxy"]) == fresh["galaxy"]  # another query's count is never used
