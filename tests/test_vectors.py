"""Vector index: exact search, filters, incremental refresh, HNSW agreement and cache persistence."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from paperwire.index.build import embed_missing
from paperwire.index.embeddings import FakeEmbedder, l2_normalize
from paperwire.index.vectors import VectorIndex, shared_index, clear_shared
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store.db import connect, transaction

HAS_USEARCH = importlib.util.find_spec("usearch") is not None


def _vecs(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def _brute(ids, mat, q, k):
    s = mat @ q
    o = np.argsort(-s, kind="stable")[:k]
    return ids[o], s[o]


def _papers(conn, n: int, start: int = 0) -> None:
    topics = ["graph neural networks", "protein folding", "quantum circuits", "robot grasping", "language models"]
    import_records(conn, [
        PaperRecord(title=f"Study {i} of {topics[i % 5]}", abstract=f"We look at {topics[i % 5]} in setting {i}.",
                    source="test", arxiv_id=f"2402.{i:05d}")
        for i in range(start, start + n)
    ])


def test_exact_search_matches_brute_force_and_handles_add_remove():
    idx = VectorIndex("m", 32)
    mat = _vecs(500)
    ids = np.arange(1000, 1500)
    idx.add(ids, mat)
    q = mat[7]
    got_ids, got_scores = idx.search(q, 10)
    want_ids, want_scores = _brute(ids, mat, q, 10)
    assert got_ids[0] == 1007 and list(got_ids) == list(want_ids)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)
    assert np.all(np.diff(got_scores) <= 0)
    # Remove the best hit: it disappears, the rest shift up.
    assert idx.remove([1007, 99999]) == 1
    assert 1007 not in idx and len(idx) == 499
    assert list(idx.search(q, 9)[0]) == list(want_ids[1:])
    # Replace a vector in place.
    idx.add([1008], q[None, :])
    assert idx.search(q, 1)[0][0] == 1008
    np.testing.assert_allclose(idx.vector(1008), q)
    assert idx.vector(1007) is None


def test_exact_search_allowed_and_exclude():
    idx = VectorIndex("m", 32)
    mat = _vecs(300, seed=1)
    idx.add(np.arange(300), mat)
    allowed = [5, 17, 200, 299, 12345]
    ids, scores = idx.search(mat[0], 10, allowed=allowed)
    assert set(ids.tolist()) == {5, 17, 200, 299}
    wide = np.arange(0, 300, 2)  # wide filter takes the scan-and-mask path
    ids, _ = idx.search(mat[1], 5, allowed=wide)
    want, _ = _brute(wide, mat[wide], mat[1], 5)
    assert list(ids) == list(want)
    ids, _ = idx.search(mat[3], 3, exclude=[3])
    assert 3 not in ids and len(ids) == 3
    empty = VectorIndex("m", 32)
    assert empty.search(mat[0], 5)[0].size == 0
    with pytest.raises(ValueError, match="32-d"):
        idx.search(np.ones(8, np.float32), 3)


def test_load_from_store_refresh_and_staleness(conn):
    e = FakeEmbedder(32)
    _papers(conn, 40)
    embed_missing(conn, e)
    idx = VectorIndex.load(conn, e.name, kind="exact")
    assert len(idx) == 40 and not idx.is_stale(conn)
    rowid = conn.execute("SELECT id FROM papers WHERE arxiv_id='2402.00003'").fetchone()[0]
    q = e.encode(["Study 3 of robot grasping. We look at robot grasping in setting 3."])[0]
    assert idx.search(q, 1)[0][0] == rowid

    # New papers: stale until their vectors exist; refresh adds exactly them.
    _papers(conn, 5, start=40)
    assert idx.is_stale(conn)
    idx.refresh(conn)
    assert len(idx) == 40  # not embedded yet
    embed_missing(conn, e)
    assert idx.is_stale(conn)
    idx.refresh(conn)
    assert len(idx) == 45 and not idx.is_stale(conn)

    # Hiding a paper takes it out; text edits swap its vector.
    with transaction(conn):
        conn.execute("UPDATE papers SET hidden=1, rev=(SELECT CAST(value AS INTEGER)+1 FROM meta WHERE key='rev') WHERE id=?", (rowid,))
        conn.execute("UPDATE meta SET value=CAST(value AS INTEGER)+1 WHERE key='rev'")
    idx.refresh(conn)
    assert rowid not in idx and len(idx) == 44

    # Deleted papers leave the index.
    gone = conn.execute("SELECT id FROM papers WHERE arxiv_id='2402.00010'").fetchone()[0]
    with transaction(conn):
        conn.execute("DELETE FROM papers WHERE id=?", (gone,))
        conn.execute("UPDATE meta SET value=CAST(value AS INTEGER)+1 WHERE key='rev'")
    idx.refresh(conn)
    assert gone not in idx and len(idx) == 43

    # A full reload agrees with the incrementally maintained index.
    fresh = VectorIndex.load(conn, e.name, kind="exact")
    assert sorted(fresh.rowids().tolist()) == sorted(idx.rowids().tolist())
    for probe in range(3):
        qq = _vecs(1, 32, seed=10 + probe)[0]
        assert list(fresh.search(qq, 10)[0]) == list(idx.search(qq, 10)[0])


def test_text_change_replaces_vector(conn):
    e = FakeEmbedder(32)
    _papers(conn, 10)
    embed_missing(conn, e)
    idx = VectorIndex.load(conn, e.name, kind="exact")
    rowid = conn.execute("SELECT id FROM papers WHERE arxiv_id='2402.00002'").fetchone()[0]
    import_records(conn, [PaperRecord(title="Completely different: ocean tides", abstract="Tides and moons.",
                                      source="test", arxiv_id="2402.00002", version=2)])
    idx.refresh(conn)
    assert rowid not in idx  # old vector must not be served for the new text
    embed_missing(conn, e)
    idx.refresh(conn)
    q = e.encode(["ocean tides and moons"])[0]
    assert idx.search(q, 1)[0][0] == rowid


def test_load_empty_model_and_shared_index(db_path):
    c = connect(db_path)
    idx = VectorIndex.load(c, "nothing-yet")
    assert len(idx) == 0 and idx.search(np.ones(384, np.float32) / np.sqrt(384), 3)[0].size == 0
    e = FakeEmbedder(32)
    _papers(c, 12)
    embed_missing(c, e)
    clear_shared()
    a = shared_index(c, e.name, kind="exact")
    assert shared_index(c, e.name, kind="exact") is a and len(a) == 12
    _papers(c, 3, start=12)
    embed_missing(c, e)
    assert len(shared_index(c, e.name, kind="exact")) == 15  # refreshed on stale
    clear_shared()
    c.close()


def _clustered_pair(seed: int, n: int, dim: int, k_centers: int, spread: float, first_id: int = 1):
    """An exact and an HNSW index over the same clustered unit vectors (like real embeddings:
    pure noise makes every neighbour equally far). Returns (rng, centers, mat, ids, exact, ann)."""
    rng = np.random.default_rng(seed)
    centers = l2_normalize(rng.standard_normal((k_centers, dim)).astype(np.float32))
    mat = l2_normalize(centers[rng.integers(0, k_centers, n)] + spread * rng.standard_normal((n, dim)).astype(np.float32))
    ids = np.arange(first_id, first_id + n)
    exact, ann = VectorIndex("m", dim, kind="exact"), VectorIndex("m", dim, kind="hnsw")
    exact.add(ids, mat)
    ann.add(ids, mat)
    return rng, centers, mat, ids, exact, ann


@pytest.mark.skipif(not HAS_USEARCH, reason="needs the ann extra: pip install 'paperwire[ann]'")
def test_hnsw_agrees_with_exact():
    rng, centers, mat, ids, exact, ann = _clustered_pair(3, 4000, 64, 50, 0.35)
    qs = l2_normalize(centers[rng.integers(0, 50, 50)] + 0.35 * rng.standard_normal((50, 64)).astype(np.float32))
    recall = np.mean([len(set(exact.search(q, 10)[0]) & set(ann.search(q, 10)[0])) / 10 for q in qs])
    assert recall >= 0.9
    # Scores are cosines (int8 quantisation costs a little precision).
    e_ids, e_scores = exact.search(qs[0], 5)
    a_ids, a_scores = ann.search(qs[0], 5)
    assert abs(float(a_scores[0]) - float(e_scores[0])) < 0.03
    # Filters and removal work on HNSW too.
    allowed = ids[::7]
    f_ids, _ = ann.search(qs[1], 10, allowed=allowed)
    assert set(f_ids.tolist()) <= set(allowed.tolist()) and len(f_ids) == 10
    wide = ids[ids % 3 != 0]  # above HNSW_EXACT_FILTER_MAX: over-fetch from the graph
    w_ids, _ = ann.search(qs[1], 10, allowed=wide)
    want, _ = exact.search(qs[1], 10, allowed=wide)
    assert set(w_ids.tolist()) <= set(wide.tolist()) and len(w_ids) == 10
    assert len(set(w_ids.tolist()) & set(want.tolist())) >= 8
    ann.remove([int(a_ids[0])])
    assert int(a_ids[0]) not in ann and int(a_ids[0]) not in ann.search(qs[0], 10)[0]
    assert np.dot(ann.vector(int(a_ids[1])), mat[a_ids[1] - 1]) > 0.98


@pytest.mark.skipif(not HAS_USEARCH, reason="needs the ann extra: pip install 'paperwire[ann]'")
def test_batched_neighbours_match_one_by_one_search():
    # neighbours_of (one batched, multi-threaded query) == search() per paper, minus itself.
    _, _, _, ids, exact, ann = _clustered_pair(5, 3000, 48, 40, 0.3, first_id=10)
    asked = [int(i) for i in ids[::37]] + [999_999]  # the last one is not indexed
    for idx in (exact, ann):
        got = idx.neighbours_of(asked, 10)
        assert 999_999 not in got and len(got) == len(asked) - 1
        for r in asked[:-1]:
            lst = got[r]
            assert len(lst) == 10 and r not in [n for n, _ in lst]
            assert [s for _, s in lst] == sorted((s for _, s in lst), reverse=True)
    truth = exact.neighbours_of(asked[:-1], 10)
    for r in asked[:-1]:
        want, _ = exact.search(exact.vector(r), 10, exclude=[r])
        assert [n for n, _ in truth[r]] == want.tolist()
    ann_got = ann.neighbours_of(asked[:-1], 10)
    recall = np.mean([len({n for n, _ in ann_got[r]} & {n for n, _ in truth[r]}) / 10 for r in asked[:-1]])
    assert recall >= 0.9


@pytest.mark.skipif(not HAS_USEARCH, reason="needs the ann extra: pip install 'paperwire[ann]'")
def test_hnsw_cache_persists_and_catches_up(db_path):
    c = connect(db_path)
    e = FakeEmbedder(32)
    _papers(c, 60)
    embed_missing(c, e)
    idx = VectorIndex.load(c, e.name, kind="hnsw")
    assert idx.load_info["source"] == "sqlite" and idx.cache_path.exists() and len(idx) == 60
    q = e.encode(["Study 5 of protein folding. We look at protein folding in setting 5."])[0]
    top = idx.search(q, 3)[0].tolist()
    c.close()

    c = connect(db_path)
    again = VectorIndex.load(c, e.name, kind="hnsw")
    assert again.load_info["source"] == "cache" and again.load_info["caught_up"] == 0
    assert again.search(q, 3)[0].tolist() == top
    _papers(c, 4, start=60)
    embed_missing(c, e)
    third = VectorIndex.load(c, e.name, kind="hnsw")
    assert third.load_info["source"] == "cache" and len(third) == 64

    # A corrupt cache file is rebuilt, not trusted.
    third.cache_path.write_bytes(b"garbage")
    fourth = VectorIndex.load(c, e.name, kind="hnsw")
    assert fourth.load_info["source"] == "sqlite" and len(fourth) == 64
    c.close()


@pytest.mark.parametrize("kind", ["exact", pytest.param("hnsw", marks=pytest.mark.skipif(not HAS_USEARCH, reason="needs usearch"))])
def test_vectors_for_returns_found_in_order(kind):
    idx = VectorIndex("m", 32, kind=kind)
    mat = _vecs(50, seed=4)
    idx.add(np.arange(100, 150), mat)
    found, vecs = idx.vectors_for([120, 999, 101])
    assert found.tolist() == [120, 101] and vecs.shape == (2, 32)
    assert np.sum(vecs * mat[[20, 1]], axis=1).min() > 0.98  # exact, or dequantised int8
    assert idx.vectors_for([999])[0].size == 0


def test_add_with_repeated_rowid_keeps_last():
    idx = VectorIndex("m", 32)
    mat = _vecs(3, seed=9)
    idx.add([1, 2, 1], mat)
    assert len(idx) == 2
    np.testing.assert_allclose(idx.vector(1), mat[2])
    assert idx.remove([1]) == 1 and 1 not in idx and len(idx) == 1


@pytest.mark.skipif(
    not (HAS_USEARCH and importlib.util.find_spec("onnxruntime")), reason="needs the ann and embed extras"
)
def test_hnsw_index_before_onnxruntime_does_not_crash():
    # A fresh process that builds an HNSW index first and only then loads onnxruntime (a
    # server whose first request is a similar-papers page, then a search): importing
    # onnxruntime after usearch used to segfault.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from paperwire.index.vectors import VectorIndex\n"
        "v = VectorIndex('m', 8, kind='hnsw')\n"
        "v.add(np.arange(1, 11), np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32))\n"
        "import onnxruntime\n"
        "print('alive', len(v))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "alive 10"
