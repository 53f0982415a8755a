"""update_index: incremental lexical/embedding/similar updates, cache use, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from paperwire.index.build import update_index
from paperwire.index.embeddings import FakeEmbedder
from paperwire.index.search import search, similar
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import search as sql
from paperwire.store.db import connect
from tests.search_support import CORPUS, load_corpus, make_records


def test_first_build_then_nothing_to_do(conn):
    load_corpus(conn)
    emb = FakeEmbedder()
    r1 = update_index(conn, embedder=emb)
    assert r1["lexical"]["indexed"] == 8
    # The paper texts, then each abstract's passages (sentences).
    assert r1["passages"]["papers"] == 8 and r1["passages"]["passages"] >= 8
    assert r1["embeddings"]["embedded"] == 8 and emb.texts_encoded == 8 + r1["passages"]["passages"]
    assert r1["similar"]["computed"] == 8
    n1 = emb.texts_encoded
    r2 = update_index(conn, embedder=emb)
    assert r2["lexical"]["indexed"] == 0 and r2["embeddings"]["embedded"] == 0
    assert r2["passages"] == {"papers": 0, "passages": 0}
    assert r2["similar"]["computed"] == 0 and emb.texts_encoded == n1


def test_changed_abstract_reindexes_only_that_paper(conn):
    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    before = emb.texts_encoded
    rows = [dict(r) for r in CORPUS]
    rows[6] = dict(rows[6], abstract="Quasar spectroscopy reveals intergalactic helium reionization.")
    rep = import_records(conn, make_records(rows))
    assert rep.updated == 1
    r = update_index(conn, embedder=emb)
    assert r["lexical"]["indexed"] == 1
    assert r["passages"]["papers"] == 1
    assert r["embeddings"]["embedded"] == 1 and emb.texts_encoded == before + 1 + r["passages"]["passages"]
    assert r["similar"]["computed"] == 1
    assert [h.paper_id for h in search(conn, "quasar helium", mode="lexical").hits] == ["2104.00007"]
    assert search(conn, "halos spiral", mode="lexical").hits == []


def test_metadata_only_change_is_not_reembedded(conn):
    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    before = emb.texts_encoded
    rows = [dict(r) for r in CORPUS]
    rows[0] = dict(rows[0], authors=["Ada Lovelace", "Alan Turing", "Kurt Godel"], upvotes=99)
    import_records(conn, make_records(rows))
    r = update_index(conn, embedder=emb)
    assert r["lexical"]["indexed"] == 1  # authors are in the lexical index
    assert emb.texts_encoded == before  # same title + abstract: cached vector reused
    assert [h.paper_id for h in search(conn, "author:godel", mode="lexical").hits] == ["2401.00001"]


def test_same_text_in_new_database_uses_cache(tmp_path):
    # A second paper with identical title+abstract (other id) shares the cached vector.
    c = connect(tmp_path / "a.db")
    load_corpus(c)
    emb = FakeEmbedder()
    update_index(c, embedder=emb)
    before = emb.texts_encoded
    twin = dict(CORPUS[2], arxiv_id="2302.09999")
    import_records(c, make_records([twin]))
    r = update_index(c, embedder=emb)
    assert emb.texts_encoded == before and r["embeddings"]["cached"] == 1
    c.close()


def test_new_papers_enter_older_papers_similar_lists(conn):
    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    old = similar(conn, "2302.00003", limit=3)
    assert "2403.00100" not in [h.paper_id for h in old]
    import_records(conn, [PaperRecord(
        arxiv_id="2403.00100", title="Diffusion Models for Image Synthesis, faster",
        abstract="Denoising diffusion probabilistic models generate images. We study sampling speed of diffusion.",
        source="test", published="2024-03-01T00:00:00Z")])
    r = update_index(conn, embedder=emb)
    assert r["similar"]["computed"] == 1 and r["similar"]["inserted_into_others"] >= 1
    stored = sql.get_similar(conn, conn.execute("SELECT id FROM papers WHERE paper_id='2302.00003'").fetchone()[0])
    assert stored is not None
    new_rowid = conn.execute("SELECT id FROM papers WHERE paper_id='2403.00100'").fetchone()[0]
    assert stored[2][0][0] == new_rowid  # now the nearest neighbour of the old paper
    assert similar(conn, "2302.00003", limit=3)[0].paper_id == "2403.00100"


def test_similar_lists_from_the_ann_index_match_exact_lists(conn, monkeypatch):
    # Above EXACT_MAX the lists come from batched index queries: same lists as the exact path.
    from paperwire.index import similar as sim
    from paperwire.index.semantic import drop_views

    load_corpus(conn)
    emb = FakeEmbedder()
    update_index(conn, embedder=emb)
    exact = {r: sql.get_similar(conn, r)[2] for (r,) in conn.execute("SELECT id FROM papers")}
    conn.execute("DELETE FROM search_similar")
    conn.commit()
    drop_views()
    monkeypatch.setattr(sim, "EXACT_MAX", 2)
    r = update_index(conn, embedder=emb)
    assert r["similar"]["computed"] == len(exact)
    for rowid, lst in exact.items():
        got = sql.get_similar(conn, rowid)[2]
        assert [n for n, _ in got] == [n for n, _ in lst] and rowid not in [n for n, _ in got]


def test_lexical_only_build_reports_note_free_and_search_notes(conn):
    load_corpus(conn)
    r = update_index(conn, semantic=False)
    assert "embeddings" not in r
    res = search(conn, "attention")  # hybrid requested, no vectors
    assert res.mode == "lexical" and res.notes


_WORKER = r"""
import sys
from paperwire.store.db import connect
from paperwire.index import build
from paperwire.index.embeddings import FakeEmbedder

class Slow(FakeEmbedder):
    def encode(self, texts, *, batch_size=64):
        import time
        time.sleep(0.05)
        return super().encode(texts, batch_size=batch_size)

build.EMBED_BATCH = 10
build.LEX_BATCH = 50
conn = connect(sys.argv[1])
print("start", flush=True)
build.update_index(conn, embedder=Slow(name="fake-64"))
print("done", flush=True)
"""


def test_sigkill_during_index_then_rerun_completes(db_path, tmp_path):
    conn = connect(db_path)
    recs = [PaperRecord(title=f"Paper {i} on topic {i % 7}", abstract=f"Abstract words alpha{i} beta{i % 5} gamma",
                        source="test", external_id=f"doc{i}") for i in range(400)]
    import_records(conn, recs)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, str(script), str(db_path)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"start"
    # Wait until some embeddings are committed, then kill mid-run.
    deadline = time.time() + 30
    while time.time() < deadline:
        n = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name='embeddings'").fetchone() else 0
        if n >= 30:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    assert 0 < partial < 400
    emb = FakeEmbedder(name="fake-64")
    rerun = update_index(conn, embedder=emb)
    # Committed work is not redone (the passages come after every paper vector).
    assert emb.texts_encoded == 400 - partial + rerun["passages"]["passages"]
    assert rerun["passages"]["papers"] == 400
    assert sql.count_indexed(conn) == 400
    assert conn.execute("SELECT COUNT(*) FROM search_fts").fetchone()[0] == 400
    assert conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 400
    assert conn.execute("SELECT COUNT(*) FROM search_similar").fetchone()[0] == 400
    assert update_index(conn, embedder=emb)["embeddings"]["embedded"] == 0
    assert [h.paper_id for h in search(conn, "alpha123", mode="lexical").hits] == ["doc123"]
    conn.close()
