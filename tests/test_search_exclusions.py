"""A query of exclusions plus filters means "the filter, minus the excluded words"
(issue 10: ``q=-quark year:2007`` was a 500 everywhere: tantivy refuses exclusions alone).

Run through both lexical engines (tantivy and FTS5), and through search(), the JSON
API, the search page, the Atom feed and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from paperwire.cli import cli
from paperwire.index import fastlex
from paperwire.index.build import update_index
from paperwire.index.query import QueryError
from paperwire.index.search import search
from paperwire.store.db import connect
from tests.search_support import load_corpus
from tests.web_support import make_client

# In the corpus, 2024 holds 2401.00001 and 2402.00008 (both about attention) and
# 2401.00002 (graphs); cs.LG adds 2312.00006 (RLHF), which never mentions attention.
YEAR_2024_MINUS = {"2401.00002"}
CS_LG_MINUS = {"2401.00002", "2312.00006"}


@pytest.fixture(params=["tantivy", "fts5"])
def engine(request, monkeypatch):
    fastlex.close_all()
    if request.param == "fts5":
        monkeypatch.setattr(fastlex, "fast_ready", lambda conn: None)
    elif not fastlex.available():
        pytest.skip("tantivy not installed")
    yield request.param
    fastlex.close_all()


@pytest.fixture
def indexed_db(db_path):
    c = connect(db_path)
    load_corpus(c)
    update_index(c, semantic=False)
    c.close()
    return db_path


def ids(res):
    return {h.paper_id for h in res.hits}


@pytest.mark.parametrize("mode", ["lexical", "hybrid", "semantic"])
@pytest.mark.parametrize("sort", ["relevance", "date", "votes"])
def test_search_filter_minus_excluded_words(indexed_db, engine, mode, sort):
    conn = connect(indexed_db)
    try:
        if engine == "tantivy":
            assert fastlex.fast_ready(conn) is not None  # the engine under test really answers
        res = search(conn, "-attention year:2024", mode=mode, sort=sort)
        assert ids(res) == YEAR_2024_MINUS and res.total == 1
        res = search(conn, "-attention cat:cs.LG", mode=mode, sort=sort)
        assert ids(res) == CS_LG_MINUS and res.total == 2
        # A phrase and a word excluded together; the filter through a keyword argument too.
        res = search(conn, '-"reinforcement learning" -graph', mode=mode, sort=sort, category="cs.LG")
        assert ids(res) == {"2401.00001", "2402.00008"}
        # Exclusions alone stay a message for people, never an engine error.
        with pytest.raises(QueryError, match="besides -exclusions"):
            search(conn, "-attention", mode=mode, sort=sort)
    finally:
        conn.close()


def test_api_page_and_atom_answer_the_filter_minus_words(indexed_db, engine):
    with make_client(indexed_db) as client:
        r = client.get("/api/papers/search", params={"q": "-attention year:2024"})
        assert r.status_code == 200, r.text
        assert {item["paper"]["id"] for item in r.json()} == YEAR_2024_MINUS

        r = client.get("/search", params={"q": "-attention year:2024"})
        assert r.status_code == 200
        assert "/papers/2401.00002" in r.text
        assert "/papers/2401.00001" not in r.text and "/papers/2402.00008" not in r.text

        r = client.get("/feeds/search.atom", params={"q": "-attention cat:cs.LG"})
        assert r.status_code == 200 and "<feed" in r.text
        assert "2401.00002" in r.text and "2312.00006" in r.text
        assert "2401.00001" not in r.text and "2402.00008" not in r.text

        # Exclusions alone: a readable answer, not a 500.
        assert client.get("/search", params={"q": "-attention"}).status_code < 500
        assert client.get("/api/papers/search", params={"q": "-attention"}).status_code < 500
        assert client.get("/feeds/search.atom", params={"q": "-attention"}).status_code < 500


def test_cli_search_filter_minus_words(indexed_db, engine):
    run = CliRunner().invoke
    for args in (["year:2024 -attention"], ["--", "-attention year:2024"]):
        r = run(cli, ["--db", str(indexed_db), "search", "--json", *args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert {h["id"] for h in json.loads(r.stdout)} == YEAR_2024_MINUS
    r = run(cli, ["--db", str(indexed_db), "search", "--", "-attention"], catch_exceptions=False)
    assert r.exit_code != 0 and "Traceback" not in r.output and "exclusions" in r.output
