"""Search API: query syntax, filters, phrases, errors, pagination, sorting, snippets."""

from __future__ import annotations

import pytest

from paperwire.index.build import update_index
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.query import QueryError, fts_expression, parse_query
from paperwire.index.search import search, similar
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from tests.search_support import load_corpus


@pytest.fixture(params=["tantivy", "fts5"])
def sconn(request, conn, monkeypatch):
    """A lexically indexed corpus, searched through each engine in turn."""
    from paperwire.index import fastlex

    fastlex.close_all()
    load_corpus(conn)
    update_index(conn, semantic=False)
    if request.param == "fts5" and getattr(conn, "dialect", "sqlite") == "postgresql":
        pytest.skip("no FTS5 in a PostgreSQL store: tantivy is its lexical index")
    if request.param == "fts5":
        monkeypatch.setattr(fastlex, "fast_ready", lambda conn: None)
    elif fastlex.fast_ready(conn) is None:
        pytest.skip("tantivy not installed")
    yield conn
    fastlex.close_all()


@pytest.fixture
def hconn(conn):
    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    return conn


def ids(res):
    return [h.paper_id for h in res.hits]


# ------------------------------------------------------------------ parsing

def test_parse_operators_and_words():
    pq = parse_query('graph "message passing" author:"Marie Curie" cat:cs.LG year:2023-2024 -survey the')
    assert pq.words == ["graph"]
    assert pq.phrases == [["message", "passing"]]
    assert pq.authors == ["marie curie"]
    assert pq.categories == ["cs.LG"]
    assert (pq.date_from, pq.date_to) == ("2023-01-01", "2025-01-01")
    assert pq.excluded == ["survey"]
    assert "message passing" in pq.text and "author" not in pq.text


def test_parse_dates_and_unknown_keys():
    pq = parse_query("after:2024-01 before:2024-06-15 foo:bar")
    assert (pq.date_from, pq.date_to) == ("2024-01-01", "2024-06-15")
    assert pq.words == ["foo", "bar"]


@pytest.mark.parametrize("bad, msg", [
    ("", "Type something"), ("   ", "Type something"), ("!!! ??? ...", "no searchable words"),
    ("x" * 251, "too long"), ("year:20x3 graphs", "year:"), ("after:2024-13-01 x", "not a valid date"),
    ("year:2024 before:2023-01-01", "date range is empty"), ("-survey", "besides -exclusions"),
    ("cat:cs.<script>", "cat:"), ("author: x", "author: needs a value"),
])
def test_bad_queries_raise_query_error(bad, msg):
    with pytest.raises(QueryError, match=msg):
        parse_query(bad)


@pytest.mark.parametrize("nasty", [
    'NEAR(a b', 'title:foo OR', '"unbalanced', 'a AND OR NOT b', '* ^ : ( )) "" x', "col : ('x", "AND",
    'sql\'; DROP TABLE papers; --', '{title abstract}: x',
])
def test_fts_syntax_never_leaks(sconn, nasty):
    res = search(sconn, nasty, mode="lexical")  # must not raise
    assert res.mode == "lexical"
    assert sconn.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 8


def test_expression_quotes_every_token():
    expr = fts_expression(parse_query('a"b NEAR x'))
    assert '"near"' in expr and "NEAR(" not in expr


# ------------------------------------------------------------------ lexical search

def test_lexical_ranking_title_above_abstract(sconn):
    res = search(sconn, "attention", mode="lexical")
    got = ids(res)
    assert set(got[:2]) == {"2401.00001", "2402.00008"}  # attention in the title
    assert "2205.00004" in got  # attention only in the abstract
    assert res.total == 3


def test_stemming_matches_inflections(sconn):
    assert "2302.00003" in ids(search(sconn, "synthesizing images", mode="lexical")) or \
        "2302.00003" in ids(search(sconn, "image", mode="lexical"))
    assert ids(search(sconn, "galaxies", mode="lexical"))[0] == "2104.00007"


def test_phrase_is_required_and_ordered(sconn):
    assert ids(search(sconn, '"language models"', mode="lexical")) == ["2311.00005", "2312.00006"] or \
        set(ids(search(sconn, '"language models"', mode="lexical"))) == {"2311.00005", "2312.00006"}
    assert ids(search(sconn, '"models language"', mode="lexical")) == []


def test_exclusion(sconn):
    got = ids(search(sconn, "attention -survey", mode="lexical"))
    assert "2402.00008" not in got and "2401.00001" in got


def test_author_filter_with_accents_and_text(sconn):
    assert set(ids(search(sconn, "author:turing", mode="lexical"))) == {"2401.00001", "2302.00003"}
    assert ids(search(sconn, "author:nunez", mode="lexical")) == ["2311.00005"]
    assert ids(search(sconn, "author:Núñez", mode="lexical")) == ["2311.00005"]
    assert ids(search(sconn, "diffusion author:turing", mode="lexical")) == ["2302.00003"]
    assert ids(search(sconn, "diffusion", author="Ada Lovelace", mode="lexical")) == []


def test_category_filter_exact_and_archive(sconn):
    assert set(ids(search(sconn, "cat:cs.CL", mode="lexical"))) == {"2401.00001", "2311.00005"}
    assert set(ids(search(sconn, "cat:q-bio", mode="lexical"))) == {"2402.00002", "2205.00004"} - {"2402.00002"} | {"2401.00002"}
    assert ids(search(sconn, "networks cat:q-bio.BM", mode="lexical")) == ["2205.00004"]


def test_date_filters(sconn):
    assert set(ids(search(sconn, "attention year:2024", mode="lexical"))) == {"2401.00001", "2402.00008"}
    assert ids(search(sconn, "attention after:2024-02-01", mode="lexical")) == ["2402.00008"]
    assert ids(search(sconn, "attention before:2023-01-01", mode="lexical")) == ["2205.00004"]
    assert ids(search(sconn, "attention", year=2022, mode="lexical")) == ["2205.00004"]
    # keyword filters as the web form and the digest pass them (ISO timestamps allowed)
    assert ids(search(sconn, "attention", after="2024-02-01T00:00:00Z", mode="lexical", sort="date")) == ["2402.00008"]
    assert ids(search(sconn, "attention", year="2022-2023", mode="lexical")) == ["2205.00004"]


def test_filters_only_newest_first(sconn):
    res = search(sconn, "author:hopper")
    assert ids(res) == ["2311.00005", "2302.00003"]
    assert any("newest first" in n for n in res.notes)


def test_sort_by_date_and_votes(sconn):
    by_date = ids(search(sconn, "attention", mode="lexical", sort="date"))
    assert by_date == ["2402.00008", "2401.00001", "2205.00004"]
    by_votes = ids(search(sconn, "attention", mode="lexical", sort="votes"))
    assert by_votes == ["2401.00001", "2205.00004", "2402.00008"]


def test_pagination_is_consistent(sconn):
    full = ids(search(sconn, "models learning networks language attention", mode="lexical", limit=8))
    assert len(full) >= 6
    pages = []
    for off in range(0, 6, 2):
        res = search(sconn, "models learning networks language attention", mode="lexical", limit=2, offset=off)
        assert res.offset == off and len(res.hits) == 2
        pages += ids(res)
    assert pages == full[:6]
    with pytest.raises(QueryError):
        search(sconn, "x", limit=0)
    with pytest.raises(QueryError):
        search(sconn, "x", offset=-1)
    with pytest.raises(QueryError):
        search(sconn, "x", mode="bogus")
    with pytest.raises(QueryError):
        search(sconn, "x", colour="red")


def test_hidden_papers_are_not_returned(sconn):
    sconn.execute("UPDATE papers SET hidden=1 WHERE paper_id='2401.00001'")
    assert "2401.00001" not in ids(search(sconn, "attention", mode="lexical"))


def test_hiding_takes_effect_in_every_search_path(hconn):
    """Hidden rowids are remembered per store revision: a hide by an admin (web revision) or
    by the harvester (store revision) must reach the very next search of every kind."""
    from paperwire.store.accounts import set_hidden
    from paperwire.store.db import transaction
    from paperwire.store.harvest import clear_deletions, record_deletions

    rowid = hconn.execute("SELECT id FROM papers WHERE paper_id='2401.00001'").fetchone()[0]

    def found(mode, **kw):
        res = search(hconn, "attention transformer", mode=mode, **kw)
        assert res.mode == mode
        return ids(res)

    searches = {
        "hybrid": lambda: found("hybrid"),
        "semantic": lambda: found("semantic"),
        "lexical": lambda: found("lexical"),
        "by date": lambda: found("hybrid", sort="date"),
        "filters only": lambda: ids(search(hconn, "author:lovelace")),
        "similar": lambda: [h.paper_id for h in similar(hconn, "2402.00008", limit=7)],
    }

    def check(visible: bool) -> None:
        for name, run in searches.items():
            assert ("2401.00001" in run()) is visible, name

    check(True)  # also warms the per-revision memo
    set_hidden(hconn, rowid, True)
    check(False)
    assert len(similar(hconn, "2402.00008", limit=7)) == 6  # 8 papers, less itself and the hidden one
    set_hidden(hconn, rowid, False)
    check(True)
    with transaction(hconn):
        assert record_deletions(hconn, [("2401.00001", "2024-06-01")]) == 1
    check(False)
    with transaction(hconn):
        assert clear_deletions(hconn, ["2401.00001"]) == 1
    check(True)


def test_hidden_memo_never_keeps_a_set_older_than_its_key(hconn, monkeypatch):
    """A hide that commits while another request reads the hidden set must not leave that
    (older) set remembered under the new revision."""
    from paperwire.index import search as search_mod
    from paperwire.store.accounts import set_hidden

    flags = search_mod._Flags()
    rowid = hconn.execute("SELECT id FROM papers WHERE paper_id='2401.00001'").fetchone()[0]
    real = search_mod.sql.hidden_rowids

    def racing(conn):
        before = real(conn)  # read just before the hide commits...
        set_hidden(conn, rowid, True)
        flags.meta(conn, [rowid])  # ...and another request moves the memo on to the new revision
        return before

    monkeypatch.setattr(search_mod.sql, "hidden_rowids", racing)
    assert rowid not in flags.hidden(hconn)
    monkeypatch.setattr(search_mod.sql, "hidden_rowids", real)
    assert rowid in flags.hidden(hconn)


def test_rowids_left_in_an_index_do_not_break_paging(sconn):
    """A paper row can vanish while the indexes still hold its rowid (until the next index
    run): pages are filled from the next candidates, with no duplicates across pages."""
    full = ids(search(sconn, "attention", mode="lexical", limit=10))
    assert len(full) == 3
    with sconn:
        sconn.execute("DELETE FROM papers WHERE paper_id=?", (full[0],))
    assert ids(search(sconn, "attention", mode="lexical", limit=2)) == full[1:3]
    pages = [search(sconn, "attention", mode="lexical", limit=1, offset=o) for o in range(3)]
    assert [ids(p) for p in pages] == [[full[1]], [full[2]], []]
    assert pages[0].total == 2


def test_snippets_escape_hostile_html(conn):
    import_records(conn, [PaperRecord(
        title='<script>alert("t")</script> Robust attention',
        abstract='We show <img src=x onerror=alert(1)> that attention & "quotes" survive <b>markup</b>.',
        source="test")])
    update_index(conn, semantic=False)
    hit = search(conn, "attention", mode="lexical").hits[0]
    for html in (hit.snippet, hit.title_html):
        assert "<script" not in html and "<img" not in html and "<b>" not in html
        assert "<mark>attention</mark>" in html
        assert html.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "&lt;img src=x onerror=alert(1)&gt;" in hit.snippet
    assert "&amp;" in hit.snippet


def test_snippet_windows_long_abstracts(conn):
    abstract = " ".join(["filler"] * 200) + " the crucial keyword appears here " + " ".join(["padding"] * 200)
    import_records(conn, [PaperRecord(title="Long one", abstract=abstract, source="test")])
    update_index(conn, semantic=False)
    snip = search(conn, "keyword", mode="lexical").hits[0].snippet
    assert "<mark>keyword</mark>" in snip and snip.startswith("…") and snip.endswith("…")
    assert len(snip) < 400


# ------------------------------------------------------------------ semantic / hybrid

def test_semantic_unavailable_falls_back_with_note(sconn):
    res = search(sconn, "attention", mode="hybrid", embedder="fake")  # no vectors were built
    assert res.mode == "lexical" and res.hits
    assert any("semantic search unavailable" in n for n in res.notes)


def test_hybrid_and_semantic_modes(hconn):
    res = search(hconn, "attention transformer", mode="hybrid")
    assert res.mode == "hybrid" and res.notes == []
    assert ids(res)[0] in {"2401.00001", "2402.00008"}
    sem = search(hconn, "diffusion images", mode="semantic")
    assert sem.mode == "semantic" and ids(sem)[0] == "2302.00003"
    # filters and phrases hold in semantic mode too
    assert set(ids(search(hconn, "attention", mode="semantic", author="Ada Lovelace"))) <= {"2401.00001", "2312.00006"}
    assert ids(search(hconn, '"dark matter"', mode="semantic")) == ["2104.00007"]
    assert all(h.paper_id != "2402.00008" for h in search(hconn, "attention -survey", mode="hybrid").hits)


def test_similar_uses_vectors_then_lexical(hconn, conn):
    sims = similar(hconn, "2401.00001", limit=3)
    assert len(sims) == 3 and all(h.paper_id != "2401.00001" for h in sims)
    assert sims[0].score >= sims[-1].score
    with pytest.raises(KeyError):
        similar(hconn, "9999.99999")


def test_similar_lexical_fallback(sconn):
    sims = similar(sconn, "2401.00001", limit=3)
    assert "2402.00008" in [h.paper_id for h in sims[:2]]  # shares "attention"
    assert "2401.00001" not in [h.paper_id for h in sims]
