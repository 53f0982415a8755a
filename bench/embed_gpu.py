"""GPU embedding throughput (device="cuda"): paperwire's torch fp16 length-bucketed path vs
sentence-transformers' encode on the same GPU (fp32 and fp16), on real abstracts repeated to N.

    python bench/embed_gpu.py [-n 100000] [--batch 512] [--tokens 65536]

Needs a CUDA device and `pip install 'paperwire[gpu]'`. Target on one H100: >= 25,000 abstracts/s.
Not measured yet (no GPU in the development sessions so far): see BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from embed_common import arxiv_abstracts, machine, now


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=None, help="padded tokens per batch (default batch*128)")
    ap.add_argument("--anchor-n", type=int, default=20_000, help="abstracts for the ST anchor runs")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU")
    from paperwire.index.embeddings import get_embedder, paper_text

    base = [paper_text(t, a) for t, a in arxiv_abstracts(None)]
    texts = (base * (args.n // len(base) + 1))[: args.n]
    print(f"# embed_gpu  {now()}  {machine()}  torch {torch.__version__}")
    e = get_embedder("torch", device="cuda")
    e.encode_bucketed(texts[:2048], batch_size=args.batch)  # warm-up (cuBLAS, allocator)
    torch.cuda.synchronize()
    t = time.perf_counter()
    v = e.encode_bucketed(texts, batch_size=args.batch, tokens_per_batch=args.tokens)
    torch.cuda.synchronize()
    s = time.perf_counter() - t
    print(f"| paperwire torch fp16, length-bucketed | {len(texts) / s:,.0f} abstracts/s | {len(texts):,} in {s:.1f} s |")
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")

    from sentence_transformers import SentenceTransformer

    from paperwire.index.embeddings import _st_model_dir

    sub = texts[: args.anchor_n]
    for label, half in (("fp32", False), ("fp16", True)):
        st = SentenceTransformer(_st_model_dir(), device="cuda")
        st.max_seq_length = 256
        if half:
            st.half()
        st.encode(sub[:1024], batch_size=128)
        torch.cuda.synchronize()
        t = time.perf_counter()
        ref = st.encode(sub, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
        torch.cuda.synchronize()
        s = time.perf_counter() - t
        print(f"| sentence-transformers encode {label}, batch 128 (anchor) | {len(sub) / s:,.0f} abstracts/s | |")
        if not half:
            cos = np.sum(v[: len(sub)] * ref, axis=1)
            print(f"cosine(paperwire fp16, ST fp32): mean {cos.mean():.5f}, min {cos.min():.5f}")
        del st
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
