"""Passage-level scoring (issue 14): sentences split, embedded, stored int8, blended into hybrid search."""

from __future__ import annotations

import numpy as np
import pytest

from paperwire.index import passages as ip
from paperwire.index.build import update_index
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.search import search
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import passages as ps
from paperwire.store.db import transaction

FILLER = [
    "Sea birds were counted along the coast each morning by volunteers.",
    "Ocean salinity profiles were recorded with a towed instrument package.",
    "Logistics relied on a small research vessel and two field huts.",
    "Weather balloons measured winds aloft during the whole season.",
    "Samples of plankton were frozen and shipped to the home laboratory.",
    "The campaign also trained students in polar field safety.",
]
NEEDLE = "Calving of the glacier front was filmed with time-lapse cameras every hour."
ROWS = [
    dict(arxiv_id="2401.00001", title="An Arctic field season", abstract=" ".join(FILLER[:3] + [NEEDLE] + FILLER[3:])),
    dict(arxiv_id="2401.00002", title="Glacier front cameras",
         abstract="A review of camera hardware for remote sites, including batteries, housings and data links for front monitoring."),
] + [dict(arxiv_id=f"2401.{i:05d}", title=f"Unrelated paper {i}",
          abstract=f"Topic number {i} about algebraic groups and lattices in number theory, part {i}.") for i in range(3, 12)]


def _load(conn, rows=ROWS):
    import_records(conn, [PaperRecord(source="t", authors=["A B"], categories=["physics.geo-ph"],
                                      published="2024-01-03T00:00:00Z", **r) for r in rows])


def test_split_passages_sentences_title_prefixed_short_ones_joined():
    got = ip.split_passages("A  title", "Short one. This second sentence is long enough to stand on its own as a passage. "
                            "Tail.  \n Another complete sentence that is clearly longer than sixty characters in all.")
    assert got == [
        "A title. Short one. This second sentence is long enough to stand on its own as a passage.",
        "A title. Tail. Another complete sentence that is clearly longer than sixty characters in all.",
    ]
    assert ip.split_passages("Only a title", "") == ["Only a title"]
    assert ip.split_passages("", "") == []
    long = "word " * 200
    assert len(ip.split_passages("T", long)[0]) == len("T. ") + ip.MAX_CHARS


def test_pack_keeps_cosines_within_a_thousandth():
    rng = np.random.default_rng(7)
    v = rng.standard_normal((9, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    blob = ps.pack(v)
    assert len(blob) == 9 * 4 + 9 * 384  # a quarter of float32, plus the scales
    back = ps.unpack(blob, 9, 384)
    q = rng.standard_normal(384).astype(np.float32)
    q /= np.linalg.norm(q)
    assert np.abs(back @ q - v @ q).max() < 1e-3
    best = ip.best_passage_cosines([(5, 9, 384, blob), (6, 1, 384, ps.pack(v[:1]))], q)
    assert best[5] == pytest.approx(float((v @ q).max()), abs=1e-3)
    assert best[6] == pytest.approx(float(v[0] @ q), abs=1e-3)


def test_index_stores_each_papers_passages_on_both_engines(engine_conn):
    _load(engine_conn)
    emb = FakeEmbedder()
    report = update_index(engine_conn, embedder=emb)
    assert report["passages"]["papers"] == len(ROWS)
    rowid = engine_conn.execute("SELECT id FROM papers WHERE paper_id='2401.00001'").fetchone()[0]
    stored = ps.passages_by_rowid(engine_conn, emb.name, [rowid])[rowid]
    texts = ip.split_passages(ROWS[0]["title"], ROWS[0]["abstract"])
    assert len(texts) == 7 and f"{ROWS[0]['title']}. {NEEDLE}" in texts
    assert np.abs(stored - emb.encode(texts)).max() < 0.01
    # The blend: 0.3 paper cosine + 0.7 best sentence, for exactly the candidates that have passages.
    q = emb.encode(["time-lapse filming of glacier calving"])[0]
    blended = ip.blend_cosines(engine_conn, emb.name, q, {rowid: 0.25, 10**9: 0.5})
    want = 0.3 * 0.25 + 0.7 * float((emb.encode(texts) @ q).max())
    assert blended[rowid] == pytest.approx(want, abs=2e-3) and blended[10**9] == 0.5
    assert ps.passage_stats(engine_conn, emb.name)["papers"] == len(ROWS)


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_the_paper_whose_one_sentence_matches_gains(engine_conn, mode):
    conn = engine_conn
    _load(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    q = "time-lapse filming of glacier calving"
    res = search(conn, q, mode=mode, embedder=emb)
    assert res.mode == mode
    with_passages = {h.paper_id: h.score for h in res.hits}
    # Pages come from one ordering: the second page of three is the middle of a page of six.
    six = [h.paper_id for h in search(conn, q, mode=mode, embedder=emb, limit=6).hits]
    assert [h.paper_id for h in search(conn, q, mode=mode, embedder=emb, limit=3, offset=3).hits] == six[3:]
    assert search(conn, q, mode=mode, embedder=emb, sort="date").total == res.total
    with transaction(conn):
        conn.execute("DELETE FROM passage_vectors")
    without = {h.paper_id: h.score for h in search(conn, q, mode=mode, embedder=emb).hits}
    # The field report (one sentence on calving among six others) against the camera review
    # (on topic throughout, no sentence about calving): the sentence closes the gap in meaning,
    # in the hybrid fusion and in semantic mode's order of its nearest papers.
    gap_with = with_passages["2401.00001"] - with_passages["2401.00002"]
    gap_without = without["2401.00001"] - without["2401.00002"]
    assert gap_with > gap_without + 0.05


def test_stopped_run_resumes_without_redoing_committed_papers(conn, monkeypatch):
    rows = [dict(arxiv_id=f"2402.{i:05d}", title=f"Paper {i}",
                 abstract=f"First sentence of paper {i} is about topic {i} and is long enough. Second one too, about {i} again here.")
            for i in range(1, 200)]
    _load(conn, rows)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb, passages=False)
    assert ps.passage_stats(conn, emb.name)["papers"] == 0
    calls = iter(range(10**6))
    stopped = ip.update_passages(conn, emb, stop=lambda: next(calls) >= 2)  # two batches, then stop
    assert stopped["stopped"] and stopped["papers"] == 2 * ip.BATCH_PAPERS
    assert ps.passage_stats(conn, emb.name)["papers"] == 2 * ip.BATCH_PAPERS
    before = emb.texts_encoded
    rest = ip.update_passages(conn, emb)
    assert rest["papers"] == len(rows) - 2 * ip.BATCH_PAPERS
    assert emb.texts_encoded - before == rest["passages"]
    assert ps.passage_stats(conn, emb.name)["papers"] == len(rows)
    assert ip.update_passages(conn, emb) == {"papers": 0, "passages": 0}


def test_passages_off_by_setting(conn, monkeypatch):
    _load(conn)
    monkeypatch.setenv("PAPERWIRE_PASSAGES", "0")
    report = update_index(conn, embedder=FakeEmbedder())
    assert "passages" not in report and ps.passage_stats(conn, "fake-64")["papers"] == 0


def test_demo_index_makes_semantic_search_ready_before_the_passages(db_path, capsys):
    import threading

    from paperwire.settings import Settings
    from paperwire.store.db import connect
    from paperwire.web.server import prepare_demo_index

    c = connect(db_path)
    _load(c)
    c.close()
    prepare_demo_index(Settings(db_path=db_path, embedder="fake"))
    worker = next(t for t in threading.enumerate() if t.name == "paperwire-demo-index")
    worker.join(60)
    err = capsys.readouterr().err
    ready = err.index("semantic search and similar papers are ready")
    assert err.index("passage scoring is ready") > ready
    c = connect(db_path)
    assert ps.passage_stats(c, "fake-64")["papers"] == len(ROWS)
    c.close()


def test_ideal_score_is_the_query_words_idf_summed(conn):
    import math

    from paperwire.index.fastlex import fast_ready

    _load(conn)
    update_index(conn, embedder=FakeEmbedder())
    fast = fast_ready(conn)
    n = len(ROWS)
    idf = lambda df: math.log(1 + (n - df + 0.5) / (df + 0.5))  # noqa: E731
    # "glacier": 2 papers (the field report's sentence, the camera review's title); "number": the
    # 9 unrelated ones; "numbers" stems like "number"; a word in no paper adds nothing.
    assert fast.ideal_score(["glacier"]) == pytest.approx(idf(2))
    assert fast.ideal_score(["glacier", "numbers", "zzqx"]) == pytest.approx(idf(2) + idf(9))
    assert fast.ideal_score([]) == 0.0


def test_a_weak_best_lexical_match_weighs_less_than_a_strong_one():
    from paperwire.index.hybrid import FusionParams, fuse

    params = FusionParams(alpha=0.5)
    lex = [(1, 2.0)]
    sem = [(2, 0.9), (1, 0.5), (3, 0.1)]
    # Scaled by its own best, the only lexical match takes the full lexical weight and wins.
    assert [r for r, _ in fuse(lex, sem, params)][:2] == [1, 2]
    # Against an ideal score four times its BM25 it is a weak signal: the semantic best wins.
    assert [r for r, _ in fuse(lex, sem, params, lexical_scale=8.0)][:2] == [2, 1]
    # A floor below the best BM25 changes nothing.
    assert fuse(lex, sem, params, lexical_scale=1.0) == fuse(lex, sem, params)


def test_the_lexical_floor_applies_in_hybrid_search(conn):
    from dataclasses import replace

    from paperwire.index.hybrid import DEFAULT_FUSION

    rows = [dict(arxiv_id=f"2403.{i:05d}", title=f"Study {i} of {w}",
                 abstract=f"This study of {w} is long enough to be a passage of its own, about {w} only.")
            for i, w in enumerate(["quasars", "lichens", "glaciers", "proteins", "sonnets", "tariffs"], 1)]
    _load(conn, rows)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    q = "quasars lichens glaciers proteins"   # each word in one paper: the best match covers a quarter
    # The coverage gate off, to see the floor alone (a quarter of the query is under its low end).
    ungated = replace(DEFAULT_FUSION, coverage_high=0.0)
    off = search(conn, q, embedder=emb, fusion=replace(ungated, lexical_floor=0.0)).hits
    on = search(conn, q, embedder=emb, fusion=replace(ungated, lexical_floor=0.6)).hits
    assert {h.paper_id for h in on} == {h.paper_id for h in off}
    assert on[0].score < off[0].score - 0.1  # the lexical side no longer scores its best as a full match
