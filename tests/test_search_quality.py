"""Issue 14, search quality: the vocabulary and typo correction, "nothing matches", totals
that do not depend on the sort, long queries on the site and in the API."""

from __future__ import annotations

import os
import re

import pytest

from paperwire.index import search as search_mod
from paperwire.index import spell
from paperwire.index.build import update_index
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.search import search
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import vocab as vocab_sql
from tests.search_support import load_corpus


def ids(res):
    return [h.paper_id for h in res.hits]


class ThresholdEmbedder(FakeEmbedder):
    """The fake embedder with a chosen "nothing matches" cosine."""

    def __init__(self, threshold: float):
        super().__init__()
        self.no_match_cosine = threshold


@pytest.fixture(params=["tantivy", "fts5"])
def engine(request, monkeypatch):
    from paperwire.index import fastlex

    fastlex.close_all()
    spell.drop_spellers()
    if request.param == "fts5" and os.environ.get("PAPERWIRE_TEST_ENGINE") == "postgresql":
        pytest.skip("no FTS5 in a PostgreSQL store: tantivy is its lexical index")
    if request.param == "fts5":
        monkeypatch.setattr(fastlex, "fast_ready", lambda conn: None)
    yield request.param
    fastlex.close_all()


# ------------------------------------------------------------------ vocabulary


def test_vocabulary_follows_the_index_and_rebuilds_the_same(conn):
    load_corpus(conn)
    update_index(conn, semantic=False)
    dfs = vocab_sql.term_dfs(conn, ["attention", "folding", "zeppelin"])
    assert dfs["attention"] == 3 and dfs["folding"] == 1 and "zeppelin" not in dfs
    # A changed abstract moves counts both ways; a new paper adds its words.
    import_records(conn, [
        PaperRecord(source="test", arxiv_id="2205.00004", title="Protein Structure with Deep Learning",
                    abstract="Deep networks predict protein structure from sequence.", published="2022-05-20T00:00:00Z"),
        PaperRecord(source="test", arxiv_id="2405.00009", title="Zeppelin Attention",
                    abstract="Airships and attention.", published="2024-05-01T00:00:00Z"),
    ])
    update_index(conn, semantic=False)
    dfs = vocab_sql.term_dfs(conn, ["attention", "folding", "zeppelin"])
    assert dfs == {"attention": 3, "zeppelin": 1}  # -1 (paper 4 lost it) +1 (the new paper)
    incremental = dict(vocab_sql.terms(conn))
    spell.rebuild_vocab(conn)
    assert dict(vocab_sql.terms(conn)) == incremental
    # The query side sees the new word at once (the lookup table is keyed on vocab_rev).
    assert spell.get_speller(conn).correct("zepelin") is None or spell.get_speller(conn).correct("zepelin").suggestion == "zeppelin"
    assert spell.get_speller(conn).is_known("zeppelin")


def test_speller_never_corrects_known_words(conn):
    load_corpus(conn)
    update_index(conn, semantic=False)
    sp = spell.get_speller(conn)
    for term, _ in vocab_sql.terms(conn):
        assert sp.correct(term) is None, term
    assert sp.correct("transformers") is None       # only "transformer" occurs: same stem
    assert sp.correct("atention").suggestion == "attention"
    assert sp.correct("moleculr").suggestion == "molecular"
    assert sp.correct("gpt4x") is None and sp.correct("xyz") is None  # digits, too short
    assert sp.correct("qqqqqqqq") is None


def test_two_edits_are_corrected_only_in_long_words(conn):
    """One edit (a slip, or a swapped pair) is corrected at any length from 4 letters; two only
    from 8 letters: in a shorter word two edits mostly reach another word ("chatbot" is not a
    misspelt "chatgpt", nor the gene "deltex" a misspelt "deleted")."""
    import_records(conn, [PaperRecord(source="test", arxiv_id=f"2401.{i:05d}", title=t, abstract=a,
                                      published="2024-01-02T00:00:00Z")
                          for i, (t, a) in enumerate([
                              ("Evaluating chatgpt on exams", "We deleted half of the reinforcement signal."),
                              ("Molecular graphs", "Reinforcement learning for molecular design."),
                          ])])
    update_index(conn, semantic=False)
    sp = spell.get_speller(conn)
    assert sp.correct("chatbot") is None and sp.correct("deltex") is None  # 2 edits, 7 and 6 letters
    assert sp.correct("chatgtp").suggestion == "chatgpt"                   # a swapped pair: 1 edit
    assert sp.correct("deleetd").suggestion == "deleted"
    two = sp.correct("reinfocrment")                                        # 12 letters, 2 edits
    assert two is not None and two.suggestion == "reinforcement" and two.distance == 2


def test_rewrite_keeps_operators():
    q = 'atention "atention span" -atention author:atention year:2024 Atention'
    assert spell.rewrite_words(q, {"atention": "attention"}) == (
        'attention "atention span" -atention author:atention year:2024 attention')
    assert spell.rewrite_words("xyzzy plugh", {"plugh": "plug"}, drop=["xyzzy"]) == "plug"


@pytest.mark.parametrize("bad,good,must", [
    ("chain of thoght", "chain of thought", "chain-of-thought"),
    ("retreival augmneted generaton", "retrieval augmented generation", "retrieval"),
])
def test_misspelt_queries_find_what_the_spelt_ones_do(demo_conn, engine, bad, good, must):
    update_index(demo_conn, semantic=False)
    res = search(demo_conn, bad, mode="lexical", limit=5)
    assert res.corrected_from == bad and res.query == good and res.notes[0].startswith(f'showing results for "{good}"')
    right = ids(search(demo_conn, good, mode="lexical", limit=5))
    assert len(set(ids(res)[:3]) & set(right)) >= 2
    assert all(must in h.title.lower().replace(" ", "-") or must in h.title.lower() for h in res.hits[:3])
    assert search(demo_conn, bad, mode="lexical", limit=5, correct=False).corrected_from is None


def test_did_you_mean_when_the_original_finds_things(conn, engine):
    load_corpus(conn)
    update_index(conn, semantic=False)
    res = search(conn, "attention transformer neural languge models", mode="lexical")
    assert res.corrected_from is None and res.hits
    assert res.suggestion == "attention transformer neural language models"
    assert 'did you mean "attention transformer neural language models"?' in res.notes
    # An acronym or name typed with an inner capital is not "corrected".
    assert search(conn, "attention transformer neural ComYMV models", mode="lexical").suggestion is None
    # Spelt right: nothing to offer.
    assert search(conn, "attention transformer neural language models", mode="lexical").suggestion is None


# ------------------------------------------------------------------ nothing matches


def test_gibberish_has_no_results_but_a_lexical_match_is_never_emptied(conn):
    load_corpus(conn)
    strict = ThresholdEmbedder(0.99)  # every cosine is below it
    update_index(conn, embedder=strict)
    res = search(conn, "xyzzyqwerty plugh", embedder=strict)
    assert res.no_match and res.hits == [] and res.total == 0 and res.total_exact
    assert res.notes[-1].startswith('no paper matches "xyzzyqwerty plugh"')
    assert search(conn, "xyzzyqwerty plugh", mode="semantic", embedder=strict).no_match
    assert search(conn, "xyzzyqwerty plugh", mode="lexical").no_match
    # Lexical matches stay, however far their cosine is below the threshold.
    res = search(conn, "galaxy xyzzyqwerty", embedder=strict)
    assert not res.no_match and ids(res)[0] == "2104.00007"
    # Without a threshold the nearest papers are listed as before.
    lax = ThresholdEmbedder(-1.0)
    assert search(conn, "xyzzyqwerty plugh", embedder=lax).hits


def test_no_match_offers_the_correctable_part(conn):
    load_corpus(conn)
    update_index(conn, semantic=False)
    res = search(conn, "xyzzyqwerty galaxxy", mode="lexical")
    # Half the words are uncorrectable: not searched corrected, but offered.
    assert res.no_match and res.suggestion == "galaxy"
    assert res.notes[-1] == 'no paper matches "xyzzyqwerty galaxxy"; did you mean "galaxy"?'


# ------------------------------------------------------------------ totals


def _widgets(conn, n=130):
    rows = [PaperRecord(source="test", arxiv_id=f"2301.{i:05d}", title=f"Widget study number {i}",
                        abstract=f"We look at widgets of kind {i % 7} and gadgets.",
                        published=f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00Z", upvotes=i % 13)
            for i in range(n)]
    rows += [PaperRecord(source="test", arxiv_id="2301.99999", title="Gadget theory",
                         abstract="Gadgets without the other word.", published="2023-06-01T00:00:00Z")]
    import_records(conn, rows)


def test_totals_are_the_same_whatever_the_sort_and_exact(conn, engine):
    _widgets(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    for mode in ("lexical", "hybrid"):
        results = {s: search(conn, "widget", mode=mode, sort=s, embedder=emb) for s in ("relevance", "date", "votes")}
        totals = {(r.total, r.total_exact) for r in results.values()}
        assert len(totals) == 1, (mode, totals)
        total, exact = totals.pop()
        assert exact
        if mode == "lexical":
            assert total == 130
        # Paging through every page of every sort lists exactly `total` distinct papers.
        for s in ("relevance", "date"):
            seen = []
            for off in range(0, total + 20, 20):
                seen += ids(search(conn, "widget", mode=mode, sort=s, limit=20, offset=off, embedder=emb))
            assert len(seen) == len(set(seen)) == total, (mode, s)
    for mode in ("lexical", "hybrid"):
        days = [h.paper["published"] for off in (0, 60) for h in
                search(conn, "widget", mode=mode, sort="date", limit=60, offset=off, embedder=emb).hits]
        assert days == sorted(days, reverse=True) and days[0].startswith("2023-12")


def test_semantic_totals_are_a_lower_bound_the_same_whatever_the_sort(conn, engine):
    """Semantic mode ranks its nearest papers, never "all that match": with more papers than
    it ranks, its total is a lower bound ("50+"), the same for every sort, and a deeper page's
    total never goes under it."""
    _widgets(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    results = {s: search(conn, "widget", mode="semantic", sort=s, embedder=emb) for s in ("relevance", "date", "votes")}
    assert {(r.total, r.total_exact, r.total_text()) for r in results.values()} == {(50, False, "50+")}
    deeper = search(conn, "widget", mode="semantic", limit=20, offset=60, embedder=emb)
    assert deeper.hits and deeper.total >= 50


def test_total_is_a_lower_bound_past_the_count_cap(conn, engine, monkeypatch):
    _widgets(conn)
    update_index(conn, semantic=False)
    monkeypatch.setattr(search_mod, "COUNT_CAP", 100)
    for s in ("relevance", "date"):
        res = search(conn, "widget", mode="lexical", sort=s)
        assert (res.total, res.total_exact, res.total_text()) == (100, False, "100+")


# ------------------------------------------------------------------ long queries and the site


def test_cut_query_at_a_word_boundary():
    from paperwire.web.searching import cut_query

    q = ("graph " * 60).strip()  # 359 characters
    cut = cut_query(q)
    assert len(cut) <= 250 and cut.endswith("graph") and q.startswith(cut)
    assert cut_query('a "b ' + "x" * 300) == "a b"  # a quote left open and a giant word
    assert cut_query("short") == "short"


def test_site_cuts_long_queries_api_refuses_them(tmp_path):
    from web_support import demo_db, make_client

    client = make_client(demo_db(tmp_path))
    long_q = "quantum entanglement " * 15  # 315 characters
    r = client.get("/search", params={"q": long_q})
    assert r.status_code == 200 and "the query was cut to" in r.text and re.search(r"results \((exact|at least [0-9,]+)\) for", r.text)
    r = client.get("/api/papers/search", params={"q": long_q})
    assert r.status_code == 422
    r = client.get("/api/papers/search", params={"q": "quantum entanglement"})
    assert r.status_code == 200 and r.headers["X-Total-Exact"] in ("true", "false")


def test_search_page_says_whether_a_total_is_exact(tmp_path, monkeypatch):
    from web_support import demo_db, make_client

    client = make_client(demo_db(tmp_path))
    seen = set()
    for q, cap in (("mixture of experts", None), ("language models", 30)):
        if cap:
            monkeypatch.setattr(search_mod, "COUNT_CAP", cap)  # counting stops there: a lower bound
        mode = "lexical"  # the test site has no embedder
        js = client.get("/search", params={"q": q, "mode": mode}, headers={"Accept": "application/json"}).json()
        page = client.get("/search", params={"q": q, "mode": mode}).text
        total = f"{js['total']:,}"
        if js["totalExact"]:
            assert f"{total} result" in page and "(exact)" in page, (q, mode)
        else:
            assert f"{total}+ results (at least {total})" in page, (q, mode)
        seen.add(js["totalExact"])
    assert seen == {True, False}  # both kinds were shown


def test_search_page_shows_spelling_and_no_match_states(tmp_path):
    from web_support import demo_db, make_client

    client = make_client(demo_db(tmp_path))
    r = client.get("/search", params={"q": "xyzzyqwerty plugh"})
    assert r.status_code == 200 and 'data-state="no-match"' in r.text and "No paper matches" in r.text
    r = client.get("/search", params={"q": "chain of thoght"})
    assert 'data-state="corrected"' in r.text and "chain of thought" in r.text
    r = client.get("/search", params={"q": "graph neural netwroks molecules"})
    assert 'data-state="did-you-mean"' in r.text and "q=graph%20neural%20networks%20molecules" in r.text
    js = client.get("/search", params={"q": "chain of thoght"}, headers={"Accept": "application/json"}).json()
    assert js["correctedFrom"] == "chain of thoght" and js["totalExact"] in (True, False)


def test_the_semantic_side_reads_the_corrected_words_when_the_original_is_kept(conn, engine, monkeypatch):
    # "Did you mean": the results stay the typed query's (its lexical side matches the words
    # as typed), but a misspelt word's embedding is noise, so the query vector is the
    # correction's: the hybrid ranks like the spelt query on the semantic side.
    from paperwire.index import semantic

    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    embedded = []
    real = semantic.encode_query
    monkeypatch.setattr(semantic, "encode_query", lambda e, text: embedded.append(text) or real(e, text))
    bad, good = "attention transformer neural languge models", "attention transformer neural language models"
    typed = search(conn, bad, embedder=emb)
    assert typed.mode == "hybrid" and typed.corrected_from is None and typed.suggestion == good
    assert embedded == [good]
    assert {h.paper_id for h in search(conn, bad, mode="lexical").hits} <= {h.paper_id for h in typed.hits}
    # Spelt right, or with correction off: the text as typed.
    embedded.clear()
    search(conn, good, embedder=emb)
    search(conn, bad, embedder=emb, correct=False)
    assert embedded == [good, bad]


def test_a_swapped_pair_beats_a_more_frequent_word_at_the_same_distance(conn):
    # "casues" is one edit from "causes" (a swap) and from "cases" (a stray u): the word with
    # the very letters typed wins, though "cases" is in more papers.
    rows = [PaperRecord(source="t", arxiv_id=f"2402.{i:05d}", title=f"Study {i}", published="2024-02-01T00:00:00Z",
                        abstract="Many cases were seen." if i < 8 else "What causes it, and what cases.")
            for i in range(1, 11)]
    import_records(conn, rows)
    update_index(conn, semantic=False)
    sp = spell.get_speller(conn)
    assert sp.correct("casues").suggestion == "causes"
    assert sp.correct("cazes").suggestion == "cases"      # one edit against two: the closest first
