"""The For-you model and its CLI: neighbours of saved papers, exclusions, undo, follows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from paperwire import library
from paperwire import recommend as rec
from paperwire.recommend import engine, model
from recommend_support import PER_TOPIC, build, make_user, paper_id


# The For-you tables are written once for both engines: every test here runs on each.
@pytest.fixture
def db_path(store_target):
    """The store the CLI and the settings are given: a SQLite file, then a PostgreSQL URL."""
    return store_target


@pytest.fixture
def conn(db_path):
    from paperwire.store.db import connect

    c = connect(db_path)
    yield c
    c.close()


@pytest.fixture
def store(conn):
    engine.clear_cache()
    build(conn)
    return conn


def _ids(res):
    return [p["paper_id"] for p in res.picks]


def test_model_ranks_neighbours_of_saved_papers_and_says_why(store):
    uid = make_user(store)
    for i in range(3):
        library.save(store, uid, paper_id("galaxies", i))
    res = rec.recommend(store, uid, window="week", limit=PER_TOPIC - 3)
    assert res.info["mode"] == "model"
    top = _ids(res)
    assert top and all(pid.startswith("2501.2") for pid in top), top  # the galaxy papers, none of the others
    assert all("which you saved" in p["why"] and p["why_papers"] for p in res.picks)


def test_never_returns_library_or_dismissed_papers_and_undo_restores(store):
    uid = make_user(store)
    saved = [paper_id("proteins", i) for i in range(3)]
    for pid in saved:
        library.save(store, uid, pid)
    first = _ids(rec.recommend(store, uid, window="all", limit=100))
    gone = first[0]
    assert rec.not_interested(store, uid, gone) is True
    after = _ids(rec.recommend(store, uid, window="all", limit=100))
    assert gone not in after and not set(saved) & set(after)
    assert len(after) == 3 * PER_TOPIC - 4
    assert rec.not_interested(store, uid, gone, undo=True) is True
    assert gone in _ids(rec.recommend(store, uid, window="all", limit=100))
    assert rec.not_interested(store, uid, gone, undo=True) is False  # nothing left to undo


def test_feedback_click_changes_the_next_ranking(store):
    uid = make_user(store)
    for i in range(3):
        library.save(store, uid, paper_id("graphs", i))
    before = _ids(rec.recommend(store, uid, window="all", limit=40))
    # Saving three protein papers too: proteins must now appear in the top of the list.
    for i in range(3):
        library.save(store, uid, paper_id("proteins", i))
    after = _ids(rec.recommend(store, uid, window="all", limit=12))
    assert any(p.startswith("2501.3") for p in after)
    assert before != after


def test_cold_start_blends_follows_and_trending(store):
    uid = make_user(store)
    res = rec.recommend(store, uid, window="week", limit=5)
    assert res.info["mode"] == "cold" and len(res.picks) == 5
    rec.follow(store, uid, "category", "q-bio.BM")
    res = rec.recommend(store, uid, window="week", limit=PER_TOPIC)
    assert all(p["paper_id"].startswith("2501.3") for p in res.picks)
    assert all("which you follow" in p["why"] and "q-bio.BM" in p["why"] for p in res.picks)
    rec.follow(store, uid, "author", "Galaxies  author1")
    res = rec.recommend(store, uid, window="week", limit=3)
    assert all(p["why"].startswith("By Galaxies Author1") for p in res.picks)
    assert rec.follow(store, uid, "category", "q-bio.BM", undo=True) is True
    assert [f["kind"] for f in rec.follows(store, uid)] == ["author"]


def test_bad_follow_and_unknown_paper_are_clear_errors(store):
    uid = make_user(store)
    with pytest.raises(rec.RecommendError, match="not an arXiv category"):
        rec.follow(store, uid, "category", "<script>")
    with pytest.raises(rec.RecommendError, match="no paper"):
        rec.not_interested(store, uid, "9999.99999")
    with pytest.raises(rec.RecommendError, match="window"):
        rec.recommend(store, uid, window="year")


def test_to_rate_returns_unrated_papers(store):
    uid = make_user(store)
    for i in range(3):
        library.save(store, uid, paper_id("graphs", i))
    rate = rec.to_rate(store, uid)
    assert len(rate) == 10
    assert not {p["paper_id"] for p in rate} & {paper_id("graphs", i) for i in range(3)}


def test_feed_token_is_stored_hashed_and_revocable(store):
    uid = make_user(store)
    token = rec.new_feed_token(store, uid)
    assert rec.user_for_feed_token(store, token) == uid
    newer = rec.new_feed_token(store, uid)
    assert rec.user_for_feed_token(store, token) is None and rec.user_for_feed_token(store, newer) == uid
    assert token not in json.dumps([list(r) for r in store.execute("SELECT * FROM feed_tokens")])
    assert rec.revoke_feed_token(store, uid) and rec.user_for_feed_token(store, newer) is None


def test_train_separates_two_clusters():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    pos = (a + 0.3 * rng.standard_normal((20, 16))).astype(np.float32)
    neg = (b + 0.3 * rng.standard_normal((60, 16))).astype(np.float32)
    m = model.train(pos, None, neg)
    assert (m.linear(pos) > 0).mean() > 0.95 and (m.linear(neg) < 0).mean() > 0.95


def _cli(db, *args):
    from paperwire.cli import cli

    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def test_cli_feedback_recommend_follow(store, db_path):
    uid = make_user(store, "ann")
    for i in range(3):
        library.save(store, uid, paper_id("galaxies", i))
    r = _cli(db_path, "recommend", "--user", "ann", "--window", "all", "--limit", "50", "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)["hits"]
    assert set(hits[0]) >= {"id", "title", "score", "why"}
    ids = [h["id"] for h in hits]
    assert not {paper_id("galaxies", i) for i in range(3)} & set(ids)
    r = _cli(db_path, "feedback", "--user", "ann", "--not-interested", ids[0])
    assert r.exit_code == 0 and "recorded" in r.output
    again = [h["id"] for h in json.loads(_cli(db_path, "recommend", "--user", "ann", "--window", "all", "--limit", "50",
                                               "--json").output)["hits"]]
    assert ids[0] not in again
    assert _cli(db_path, "feedback", "--user", "ann", "--not-interested", ids[0], "--undo").exit_code == 0
    back = json.loads(_cli(db_path, "recommend", "--user", "ann", "--window", "all", "--limit", "50", "--json").output)
    assert ids[0] in [h["id"] for h in back["hits"]]
    r = _cli(db_path, "follow", "--user", "ann", "--category", "cs.LG", "--json")
    assert json.loads(r.output)["follows"][0]["value"] == "cs.LG"
    r = _cli(db_path, "feedback", "--user", "nobody", "--not-interested", ids[0])
    assert r.exit_code == 1 and "no user" in r.output


def test_digest_picks_use_the_model_carry_signed_links_and_skip_dismissed(conn, db_path):
    from datetime import datetime, timezone

    from digest_support import activate, make_settings
    from paperwire.digest.compose import compose_digest
    from paperwire.digest.render import digest_message
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import FakeEmbedder
    from paperwire.ingest import import_records
    from paperwire.recommend.mail_links import read_link_token
    from recommend_support import records

    engine.clear_cache()
    now = datetime.now(timezone.utc)
    import_records(conn, records(day=now.strftime("%Y-%m-%d")))
    update_index(conn, embedder=FakeEmbedder(64))
    settings = make_settings(db_path, 2525)
    uid = make_user(conn)
    for i in range(3):
        library.save(conn, uid, paper_id("galaxies", i))
    rec.not_interested(conn, uid, paper_id("galaxies", 5))
    rec.follow(conn, uid, "category", "q-bio.BM")
    sub = activate(conn, settings, "reader@example.org", top_n=0, personal=True)
    digest = compose_digest(conn, settings, sub, period="daily:test", now=now)
    picks = next(s for s in digest.sections if s.key == "picks").papers
    assert picks and all(p["paper_id"].startswith("2501.2") and "which you saved" in p["why"] for p in picks)
    everything = [p["paper_id"] for s in digest.sections for p in s.papers]
    assert paper_id("galaxies", 5) not in everything
    assert any(s.key == "categories" and "q-bio.BM" in s.title for s in digest.sections)  # follows reach the digest
    _, raw = digest_message(settings, digest, now=now)
    import email
    import re
    from urllib.parse import unquote

    msg = email.message_from_bytes(raw)
    text = next(part.get_payload(decode=True).decode() for part in msg.walk() if part.get_content_type() == "text/plain")
    tokens = re.findall(r"/for-you/mail\?token=(\S+)", text)
    assert len(tokens) == 2 * len(everything)
    assert {read_link_token(settings.secret_key, unquote(t))[2] for t in tokens} == {"save", "not_interested"}


def _galaxy_records(day: str, start: int, n: int = 4):
    from paperwire.model import PaperRecord

    words = "galaxy rotation curves dark matter halos spiral stellar velocity".split()
    return [PaperRecord(source="test", arxiv_id=f"2501.9{start + i:04d}", title=f"Galaxy halos {start + i}: {' '.join(words[:4])}",
                        abstract=" ".join(words) + f" extra{start + i}", authors=["Late Author"], categories=["astro-ph.GA"],
                        published=f"{day}T01:00:00Z") for i in range(n)]


def test_profile_query_hits_only_the_windows_papers(store):
    # The BM25 profile query is dated: an older paper that uses the same words must not take a
    # place among its hits (it could never be shown in the window anyway).
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import FakeEmbedder
    from paperwire.ingest import import_records

    import_records(store, _galaxy_records("2024-06-03", 0))
    update_index(store, embedder=FakeEmbedder(64))
    old = {store.execute("SELECT id FROM papers WHERE arxiv_id=?", (f"2501.9{i:04d}",)).fetchone()[0] for i in range(4)}
    terms = ["galaxy", "halos", "rotation", "spiral"]
    since, until = engine.window_bounds(store, "week")
    window = set(engine.sql.window_rowids(store, since, until))
    dated = engine._lexical(store, terms, since, until)
    assert dated and set(dated) <= window and not set(dated) & old
    assert old <= set(engine._lexical(store, terms, None, None))  # undated ("all"): they match


def test_reload_reuses_the_picks_until_the_store_changes(store):
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import FakeEmbedder
    from paperwire.ingest import import_records

    uid = make_user(store)
    for i in range(3):
        library.save(store, uid, paper_id("galaxies", i))
    first, _ = engine.rank_window(store, uid, window="all", limit=20)
    again, _ = engine.rank_window(store, uid, window="all", limit=20)
    assert [p.rowid for p in again] == [p.rowid for p in first] and again[0] is first[0]  # a lookup
    # An import changes the store revision: the new galaxy papers must be ranked in at once.
    import_records(store, _galaxy_records("2025-01-20", 10))
    update_index(store, embedder=FakeEmbedder(64))
    new = {store.execute("SELECT id FROM papers WHERE arxiv_id=?", (f"2501.9{10 + i:04d}",)).fetchone()[0] for i in range(4)}
    after, _ = engine.rank_window(store, uid, window="all", limit=20)
    assert new & {p.rowid for p in after}, [p.rowid for p in after]


def test_window_membership_helpers_match_numpy_isin():
    rng = np.random.default_rng(3)
    ids = np.unique(rng.integers(0, 5000, 800))
    among = rng.integers(-10, 5100, 300)
    assert np.array_equal(engine._members(ids, among), np.isin(ids, among))
    pos = engine._positions(ids, among)
    assert np.array_equal(np.sort(ids[pos]), np.sort(among[np.isin(among, ids)]))
    assert not engine._members(ids, np.zeros(0, np.int64)).any() and len(engine._positions(ids[:0], among)) == 0


def _clustered(rng, n, dim, centres=12):
    c = rng.normal(size=(centres, dim))
    v = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_int8_first_stage_keeps_exactly_the_float32_shortlist():
    from paperwire.recommend.window import INT8_MIN_ROWS, Window

    rng = np.random.default_rng(7)
    n = INT8_MIN_ROWS + 1500
    win = Window(np.arange(10, 10 + n, dtype=np.int64), _clustered(rng, n, 48), shared=True)
    assert win.int8() is not None  # the int8 pass is what is under test
    for trial in range(25):
        w = (rng.normal(size=48) * rng.choice([1e-3, 1.0, 50.0])).astype(np.float32)
        keep = rng.random(n) > rng.choice([0.0, 0.2, 0.9])
        k = int(rng.integers(1, 1200))
        exact = np.where(keep, win.vecs @ w, -np.inf)
        want = set(np.argpartition(-exact, k - 1)[:k].tolist()) if k < keep.sum() else set(np.flatnonzero(keep).tolist())
        got = win.top_logits(w, keep, k)
        assert set(got.tolist()) == want, (trial, k)
    # A row that is not finite: no int8 copy (its error bound would mean nothing), float32 answers.
    bad = win.vecs.copy()
    bad[5, 3] = np.nan
    odd = Window(win.ids, bad, shared=True)
    assert odd.int8() is None
    assert len(odd.top_logits(np.ones(48, np.float32), np.ones(n, bool), 10)) == 10
    # Small or per-request windows never build the copy.
    assert Window(win.ids[:100], win.vecs[:100], shared=True).int8() is None
    assert Window(win.ids, win.vecs, shared=False).int8() is None


def test_ranking_is_the_same_with_and_without_the_int8_first_stage(store, monkeypatch):
    from paperwire.recommend import window

    uid = make_user(store)
    for topic in ("galaxies", "proteins"):
        for i in range(3):
            library.save(store, uid, paper_id(topic, i))
    monkeypatch.setattr(engine, "SHORTLIST", 6)  # shorter than the window: the first stage decides
    monkeypatch.setattr(window, "INT8_MIN_ROWS", 1)
    quick, _ = engine.rank_window(store, uid, window="all", limit=2)
    assert [w for w in window._WINDOWS.values() if w._int8 not in (False, None)]  # the int8 pass ran
    engine.clear_cache()
    monkeypatch.setattr(window, "INT8_MIN_ROWS", 10**9)
    slow, _ = engine.rank_window(store, uid, window="all", limit=2)
    assert not [w for w in window._WINDOWS.values() if w._int8 not in (False, None)]
    assert len(quick) == 2 and [(p.rowid, p.score, p.why) for p in quick] == [(p.rowid, p.score, p.why) for p in slow]


def test_positive_vectors_come_from_the_window_or_the_index_in_signal_order():
    from paperwire.index.vectors import VectorIndex
    from paperwire.recommend.window import Window

    rng = np.random.default_rng(2)
    ids = np.arange(1, 401, dtype=np.int64)
    vecs = _clustered(rng, 400, 16)
    idx = VectorIndex("m", 16)
    idx.add(ids, vecs)
    inside = ids[100:300]
    win = Window(inside, vecs[100:300].copy())
    asked = [350, 120, 9999, 5, 299, 100, 301, 42]  # outside, inside, nowhere, ...
    want_ids, want_vecs = idx.vectors_for(asked)
    got_ids, got_vecs = engine._vectors_of(idx, win, asked)
    assert got_ids.tolist() == want_ids.tolist() == [350, 120, 5, 299, 100, 301, 42]
    assert np.array_equal(got_vecs, want_vecs)
    only_in = [150, 101, 299]
    assert np.array_equal(engine._vectors_of(idx, win, only_in)[1], idx.vectors_for(only_in)[1])


def test_profile_terms_rank_by_paper_count_then_use_then_word():
    from collections import Counter

    from paperwire.recommend.lexical import _words, profile_terms

    def reference(papers, max_terms, exclude):  # the documented rule, written plainly
        df, total, bad = Counter(), Counter(), Counter()
        for t, a in papers:
            for w in set(_words(t)):
                df[w] += 2
            for w in set(_words(a)):
                df[w] += 1
            total.update(_words(t) + _words(a))
        for t, a in exclude:
            bad.update(set(_words(f"{t} {a}")))
        kept = [w for w in df if df[w] - 2 * bad[w] > 0]
        return sorted(kept, key=lambda w: (-(df[w] - 2 * bad[w]), -total[w], w))[:max_terms]

    rng = np.random.default_rng(4)
    vocab = [f"term{i}" for i in range(400)] + ["graph", "neural", "quantum", "protein", "galaxy"]
    def paper():
        k = int(rng.integers(0, 5)) * 60
        words = lambda m: " ".join(vocab[int(j)] for j in rng.integers(k, k + 120, m))
        return words(8), words(60)
    for trial in range(20):
        papers = [paper() for _ in range(int(rng.integers(2, 60)))]
        exclude = [paper() for _ in range(int(rng.integers(0, 4)))]
        for max_terms in (1, 5, 20, 500):
            assert profile_terms(papers, max_terms=max_terms, exclude=exclude) == reference(papers, max_terms, exclude)
    assert profile_terms([]) == [] and profile_terms([("", "")]) == []


def test_day_week_and_month_windows_hold_only_their_days(store):
    """Graph papers listed 1, 6, 20 and 60 days before the newest day (2025-01-20): each
    window picks exactly the papers of its days, and "all" picks every one."""
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import FakeEmbedder
    from paperwire.ingest import import_records
    from paperwire.model import PaperRecord

    words = "graph neural network message passing molecules atoms bonds node embeddings"
    ago = {"2025-01-19": "2501.40001", "2025-01-14": "2501.40002", "2024-12-31": "2501.40003",
           "2024-11-21": "2501.40004"}
    import_records(store, [PaperRecord(source="test", arxiv_id=aid, title=f"Graph networks listed {day}",
                                       abstract=words + f" listed{aid}", authors=["Late Author"],
                                       categories=["cs.LG"], published=f"{day}T10:00:00Z")
                           for day, aid in ago.items()])
    update_index(store, embedder=FakeEmbedder(64))
    engine.clear_cache()
    uid = make_user(store)
    for i in range(3):
        library.save(store, uid, paper_id("graphs", i))
    picked = {w: set(_ids(rec.recommend(store, uid, window=w, limit=200))) for w in ("day", "week", "month", "all")}
    extra = set(ago.values())
    assert picked["day"] & extra == set() and paper_id("graphs", 3) in picked["day"]
    assert picked["week"] & extra == {"2501.40001", "2501.40002"}
    assert picked["month"] & extra == {"2501.40001", "2501.40002", "2501.40003"}
    assert picked["all"] & extra == extra
    assert picked["day"] < picked["week"] < picked["month"] < picked["all"]
    res = rec.recommend(store, uid, window="month", limit=5)
    assert (res.info["since"], res.info["until"]) == ("2024-12-22", "2025-01-20")


def test_to_rate_are_the_papers_nearest_the_decision_boundary(store):
    """Once there is a model, "rate these 10" are the month's unrated papers with the
    smallest |logit|: every one is less sure than every paper left out."""
    uid = make_user(store)
    for i in range(4):
        library.save(store, uid, paper_id("graphs", i))
    rec.not_interested(store, uid, paper_id("proteins", 0))
    sig = engine.signals(store, uid)
    idx = engine.vector_index(store)
    tr = engine.trained(store, uid, sig, idx)
    assert tr.linear is not None
    since, until = engine.window_bounds(store, "month")
    win = engine.window_of(store, since, until, idx)
    margin = dict(zip((int(i) for i in win.ids), np.abs(tr.linear.linear(win.vecs)).tolist()))
    rate = rec.to_rate(store, uid)
    chosen = [p["id"] for p in rate]
    assert len(chosen) == 10 and not set(chosen) & sig.excluded
    left = [m for i, m in margin.items() if i not in chosen and i not in sig.excluded]
    assert left and max(margin[i] for i in chosen) <= min(left)
    assert [margin[i] for i in chosen] == sorted(margin[i] for i in chosen)  # least sure first
