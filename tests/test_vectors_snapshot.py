"""The node's HNSW snapshot: memory-mapped once, a private delta per process, atomic rewrites."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from paperwire.index import snapshot
from paperwire.index.build import embed_missing
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.vectors import VectorIndex
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import papers as store_papers
from paperwire.store.db import connect, transaction

pytestmark = pytest.mark.skipif(importlib.util.find_spec("usearch") is None, reason="needs the ann extra: pip install 'paperwire[ann]'")

TOPICS = ["graph neural networks", "protein folding", "quantum circuits", "robot grasping", "language models"]


def _papers(conn, n: int, start: int = 0, text: str = "") -> None:
    import_records(conn, [
        PaperRecord(title=f"Study {i} of {TOPICS[i % 5]}{text}", abstract=f"We look at {TOPICS[i % 5]} in setting {i}.{text}",
                    source="test", arxiv_id=f"2402.{i:05d}")
        for i in range(start, start + n)
    ])


def _rowid(conn, arxiv_id: str) -> int:
    return int(store_papers.get_paper(conn, arxiv_id)["id"])


def _maps(path) -> bool:
    """Whether this process memory-maps ``path`` (it is read through the page cache, not copied)."""
    return str(path) in open("/proc/self/maps").read()


@pytest.fixture
def store(db_path):
    c = connect(db_path)
    e = FakeEmbedder(32)
    _papers(c, 80)
    embed_missing(c, e)
    yield c, e
    c.close()


def test_snapshot_is_mapped_read_only_and_answers_like_the_index_it_saved(store, tmp_path):
    c, e = store
    mem = VectorIndex.load(c, e.name, kind="hnsw", cache_dir=None)  # in memory only
    qs = e.encode([f"Study {i} of {TOPICS[i % 5]}" for i in range(12)])
    before = [mem.search(q, 5) for q in qs]
    path = mem.save(tmp_path / "v" / f"{e.name}.usearch")
    assert path.exists() and path.name.startswith(f"{e.name}.snap-") and mem.cache_path == path
    assert isinstance(mem._impl, snapshot.Mapped) and _maps(path)  # it switched to mapping its own file
    for q, (ids, scores) in zip(qs, before):
        got_ids, got_scores = mem.search(q, 5)
        assert got_ids.tolist() == ids.tolist()
        np.testing.assert_allclose(got_scores, scores, rtol=1e-6)
    man = json.loads((tmp_path / "v" / f"{e.name}.usearch.json").read_text())
    assert man["file"] == path.name and man["size"] == 80 and man["rev"] == mem.rev


def test_delta_adds_changes_hides_and_deletes_over_the_mapped_snapshot(store):
    c, e = store
    idx = VectorIndex.load(c, e.name, kind="hnsw")
    assert idx.load_info["source"] == "sqlite" and isinstance(idx._impl, snapshot.Mapped) and _maps(idx.cache_path)
    file = idx.cache_path
    _papers(c, 5, start=80)  # new papers
    _papers(c, 1, start=3, text=" now about volcanoes")  # changed text: a new vector
    embed_missing(c, e)
    victim, gone = _rowid(c, "2402.00007"), _rowid(c, "2402.00011")
    with transaction(c):  # as the moderation and delete paths write it (rev bumped)
        c.execute("UPDATE papers SET hidden=1, rev=(SELECT CAST(value AS INTEGER)+1 FROM meta WHERE key='rev') WHERE id=?", (victim,))
        c.execute("DELETE FROM papers WHERE id=?", (gone,))
        c.execute("UPDATE meta SET value=CAST(value AS INTEGER)+1 WHERE key='rev'")
    assert idx.is_stale(c)
    idx.refresh(c)
    assert idx.cache_path == file  # still the same mapped file, the rest is the delta
    assert len(idx) == 80 + 5 - 2 and victim not in idx and gone not in idx
    assert idx._impl.dead == {_rowid(c, "2402.00003"), victim, gone}
    new = _rowid(c, "2402.00082")
    q = e.encode(["Study 82 of quantum circuits. We look at quantum circuits in setting 82."])[0]
    assert idx.search(q, 1)[0].tolist() == [new]
    changed = _rowid(c, "2402.00003")
    qv = e.encode(["Study 3 of robot grasping now about volcanoes. We look at robot grasping in setting 3. now about volcanoes"])[0]
    assert idx.search(qv, 1)[0].tolist() == [changed]
    np.testing.assert_allclose(idx.vector(changed), qv, atol=1e-5)  # the delta's vector, not the old one
    found, vecs = idx.vectors_for([changed, victim, new, 1])
    assert found.tolist() == [changed, new, 1] and vecs.shape == (3, 32)
    for k in (1, 10, 200):  # dead keys never come back, however deep the search
        ids = idx.search(e.encode(["Study 7 of protein folding"])[0], k)[0].tolist()
        assert victim not in ids and gone not in ids and len(ids) == min(k, len(idx))
    fresh = VectorIndex.load(c, e.name, kind="exact")  # a full reload agrees with snapshot + delta
    assert sorted(fresh.rowids().tolist()) == sorted(idx.rowids().tolist())
    nn = idx.neighbours_of([new, changed], 200)  # the batched path (similar lists) sees the same
    assert {r for r, _ in nn[new]} == set(fresh.rowids().tolist()) - {new}
    assert nn[changed][0][0] != victim and all(r not in (victim, gone) for r, _ in nn[changed])


def test_checkpoint_rewrites_atomically_and_other_processes_remap(store, monkeypatch):
    c, e = store
    a = VectorIndex.load(c, e.name, kind="hnsw")
    b = VectorIndex.load(c, e.name, kind="hnsw")  # another process of the node
    assert b.load_info["source"] == "cache" and b.cache_path == a.cache_path
    old = a.cache_path
    monkeypatch.setattr(snapshot, "DELTA_MAX", 3)
    _papers(c, 6, start=80)
    embed_missing(c, e)
    a.refresh(c)  # delta 6 > 3: a rewrites the snapshot and maps the new one
    assert a.cache_path != old and not old.exists() and a._impl.delta_size() == 0 and len(a) == 86
    assert b.is_stale(c)
    b.refresh(c)  # b sees the new manifest, maps it and drops its own delta
    assert b.cache_path == a.cache_path and b._impl.delta_size() == 0 and len(b) == 86
    q = e.encode(["Study 84 of language models. We look at language models in setting 84."])[0]
    assert a.search(q, 3)[0].tolist() == b.search(q, 3)[0].tolist()
    assert a.search(q, 1)[0].tolist() == [_rowid(c, "2402.00084")]


def test_crash_while_writing_a_snapshot_leaves_the_previous_one_usable(store, monkeypatch, db_path):
    c, e = store
    idx = VectorIndex.load(c, e.name, kind="hnsw")
    good = idx.cache_path
    _papers(c, 4, start=80)
    embed_missing(c, e)
    idx.refresh(c)

    def dies_half_way(index, base, meta):  # the file is half written when the process dies
        tmp = base.with_name(f"{e.name}.snap-crash.usearch.tmp")
        tmp.write_bytes(b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(snapshot, "write_snapshot", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        idx.save()
    monkeypatch.undo()
    assert good.exists() and json.loads(snapshot.manifest_path(idx.base_path).read_text())["file"] == good.name
    # A fresh process maps the previous snapshot and catches up from the store.
    code = (
        "import sys; from paperwire.store.db import connect; from paperwire.index.vectors import VectorIndex\n"
        f"c = connect(sys.argv[1]); i = VectorIndex.load(c, {e.name!r}, kind='hnsw')\n"
        "print(i.load_info['source'], i.load_info['caught_up'], len(i), i.cache_path.name)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "cache" and int(out[1]) > 0 and out[2:] == ["84", good.name]
    # The next successful save removes the half file.
    idx.save()
    assert not list(good.parent.glob("*.tmp")) and idx.cache_path != good and not good.exists()


def test_a_snapshot_from_before_the_manifest_named_files_still_loads(store):
    c, e = store
    idx = VectorIndex.load(c, e.name, kind="hnsw")
    base = idx.base_path
    man = json.loads(snapshot.manifest_path(base).read_text())
    idx.cache_path.rename(base)  # the old layout: <model>.usearch + a manifest without "file"
    del man["file"]
    snapshot.manifest_path(base).write_text(json.dumps(man))
    again = VectorIndex.load(c, e.name, kind="hnsw")
    assert again.load_info["source"] == "cache" and again.cache_path == base and len(again) == 80


def test_deleting_the_cache_folder_under_a_serving_process_is_safe(store, monkeypatch):
    c, e = store
    idx = VectorIndex.load(c, e.name, kind="hnsw")
    import shutil

    shutil.rmtree(idx.base_path.parent)  # "deleting that folder is always safe"
    monkeypatch.setattr(snapshot, "DELTA_MAX", 2)
    _papers(c, 5, start=80)
    embed_missing(c, e)
    assert idx.is_stale(c)
    idx.refresh(c)  # the mapping outlives the file; the rewrite fails quietly, the delta serves
    assert len(idx) == 85
    q = e.encode(["Study 81 of protein folding. We look at protein folding in setting 81."])[0]
    assert idx.search(q, 1)[0].tolist() == [_rowid(c, "2402.00081")]
    fresh = VectorIndex.load(c, e.name, kind="hnsw")  # the next process rebuilds it from the store
    assert fresh.load_info["source"] == "sqlite" and len(fresh) == 85 and fresh.cache_path.exists()
