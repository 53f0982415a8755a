"""Shared base of the embedding backends: model constants, pip hints, the
:class:`EmbedderUnavailable` error, L2 normalisation, the vendored MiniLM WordPiece tokenizer,
the CPU thread count and length-sorted batching.

Both :mod:`paperwire.index.embed_onnx` and :mod:`paperwire.index.embed_torch` build on it;
:mod:`paperwire.index.embeddings` (the public entry point) re-exports it. It imports nothing
heavy: ``tokenizers`` is imported when a tokenizer is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

MINILM_DIM = 384
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json);
# the tokenizer.json shipped with the model says 128, which would cut abstracts short.
MAX_SEQ_LENGTH = 256

PIP_EMBED = "pip install 'paperwire[embed]'"
PIP_TORCH = "pip install torch==2.13.0 && pip install 'paperwire[torch]'"
PIP_GPU = "pip install 'paperwire[gpu]'  (a CUDA build of torch and an NVIDIA driver)"


class EmbedderUnavailable(RuntimeError):
    """The requested embedding backend cannot run here; the message names the pip command."""


def l2_normalize(mat: np.ndarray) -> np.ndarray:
    """Row-normalise in place (zero rows stay zero) and return ``mat`` as float32."""
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    mat /= norms
    return mat


# --------------------------------------------------------------------------- helpers


def _tokenizer_path() -> str:
    return str(Path(__file__).resolve().parent.parent / "data" / "minilm" / "tokenizer.json")


def load_tokenizer(max_length: int = MAX_SEQ_LENGTH):
    """The all-MiniLM-L6-v2 WordPiece tokenizer, truncating at ``max_length``, no padding."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EmbedderUnavailable(f"the 'tokenizers' package is missing: {PIP_EMBED}") from exc
    tok = Tokenizer.from_file(_tokenizer_path())
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()  # we pad per length-sorted batch ourselves
    return tok


def tokenize_ids(tokenizer, texts: Sequence[str]) -> list:
    """Encodings of ``texts`` in one Rust call (all cores, GIL released). ``encode_batch_fast``
    (tokenizers >= 0.20) skips character offsets, which no embedder here needs: ~10 % faster."""
    fast = getattr(tokenizer, "encode_batch_fast", None)
    if fast is not None:
        return fast(list(texts), add_special_tokens=True)
    return tokenizer.encode_batch(list(texts), add_special_tokens=True)


def _cpu_threads() -> int:
    env = os.environ.get("PAPERWIRE_EMBED_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Index batches over texts sorted by token length (longest first), so each batch pads
    to nearly its own length. ``max_tokens`` caps batch_size * padded length (memory)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    i = 0
    n = len(order)
    while i < n:
        longest = int(lengths[order[i]]) or 1
        size = batch_size
        if max_tokens:
            size = max(1, min(batch_size, max_tokens // longest))
        batches.append(order[i : i + size])
        i += size
    return batches
