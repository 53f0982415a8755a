"""Search's per-process caches (query vectors, paper metadata) never change an answer,
and the web's plain titles skip the title highlighting."""

from __future__ import annotations

import numpy as np
import pytest

from paperwire.index.build import update_index
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.search import search
from paperwire.index.semantic import drop_views, encode_query
from paperwire.store import accounts
from paperwire.store.papers import get_paper
from tests.search_support import load_corpus


@pytest.fixture(autouse=True)
def fresh_caches():
    drop_views()
    yield
    drop_views()


def ids(res):
    return [h.paper_id for h in res.hits]


def test_query_vectors_are_cached_per_model_and_text():
    a, b = FakeEmbedder(32, name="fake-cache-a"), FakeEmbedder(32, name="fake-cache-b")
    first = encode_query(a, "graph  neural\tnetworks")
    again = encode_query(a, "graph neural networks")
    assert again is first and a.calls == 1
    assert np.array_equal(first, a.encode(["graph neural networks"])[0])
    with pytest.raises(ValueError):
        first[0] = 1.0  # shared between requests: read-only
    encode_query(b, "graph neural networks")  # another model: its own entry
    assert b.calls == 1
    encode_query(a, "graph neural network")  # another text
    assert a.calls == 3  # (one of them was the direct encode above)
    drop_views()
    encode_query(a, "graph neural networks")
    assert a.calls == 4


def test_hybrid_search_with_a_cached_query_vector_gives_the_same_answer(conn):
    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    calls = emb.calls
    first = search(conn, "attention transformer", mode="hybrid", embedder=emb, limit=5)
    again = search(conn, "attention  transformer", mode="hybrid", embedder=emb, limit=5)
    page2 = search(conn, "attention transformer", mode="hybrid", embedder=emb, limit=2, offset=2)
    assert emb.calls == calls + 1  # one query vector for all three
    assert first.mode == "hybrid" and len(first.hits) == 5
    assert [(h.paper_id, h.score) for h in again.hits] == [(h.paper_id, h.score) for h in first.hits]
    assert ids(page2) == ids(first)[2:4]
    drop_views()
    fresh = search(conn, "attention transformer", mode="hybrid", embedder=emb, limit=5)
    assert emb.calls == calls + 2
    assert [(h.paper_id, h.score) for h in fresh.hits] == [(h.paper_id, h.score) for h in first.hits]


def test_hiding_a_paper_on_the_site_drops_it_from_the_next_search(conn):
    load_corpus(conn)
    update_index(conn, semantic=False)
    assert "2401.00001" in ids(search(conn, "attention", mode="lexical"))  # remembered as visible
    rowid = get_paper(conn, "2401.00001")["id"]
    accounts.set_hidden(conn, rowid, True)  # bumps meta.web_rev only
    res = search(conn, "attention", mode="lexical")
    assert "2401.00001" not in ids(res) and res.hits
    accounts.set_hidden(conn, rowid, False)
    assert "2401.00001" in ids(search(conn, "attention", mode="lexical"))


def test_votes_on_the_site_reorder_the_next_vote_sorted_search(conn):
    load_corpus(conn)
    update_index(conn, semantic=False)
    before = ids(search(conn, "attention", mode="lexical", sort="votes"))
    assert before == ["2401.00001", "2205.00004", "2402.00008"]  # 50, 12, 7 upvotes
    survey = get_paper(conn, "2402.00008")["id"]
    for i in range(6):  # 7 + 6 = 13 > 12
        user = accounts.create_user(conn, f"voter{i}", f"voter{i}@example.org", "x")
        accounts.set_vote(conn, user, survey, True)
    assert ids(search(conn, "attention", mode="lexical", sort="votes")) == ["2401.00001", "2402.00008", "2205.00004"]


def test_titles_can_be_left_plain(conn):
    load_corpus(conn)
    update_index(conn, semantic=False)
    plain = search(conn, "attention", mode="lexical", with_title_html=False).hits[0]
    marked = search(conn, "attention", mode="lexical").hits[0]
    assert plain.paper_id == marked.paper_id and plain.snippet == marked.snippet
    assert "<mark>" in plain.snippet and plain.title_html == ""
    assert "<mark>Attention</mark>" in marked.title_html
